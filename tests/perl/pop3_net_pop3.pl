#!/usr/bin/perl
# Perl's Net::POP3 (libnet, in every Perl: what mail scripts and monitoring checks use
# to read a maildrop) against a running tern, over STLS. Run by tests/perl_libnet.rs,
# which delivers the three messages of `deliver_three` ("pop N") to alice's INBOX.
# Prints "ok" when every check passed; dies with the reason otherwise.
#
#     perl pop3_net_pop3.pl PORT USER PASSWORD
use strict;
use warnings;
use Net::POP3;

my ($port, $user, $password) = @ARGV;
die "usage: pop3_net_pop3.pl PORT USER PASSWORD\n" unless $password;

sub check {
    my ($ok, $what) = @_;
    die "FAILED: $what\n" unless $ok;
}

sub session {
    my $pop = Net::POP3->new('127.0.0.1', Port => $port, Timeout => 30,
        Debug => $ENV{POP3_DEBUG} ? 1 : 0) or die "FAILED: connect: $@\n";
    my $capa = $pop->capa or die "FAILED: CAPA\n";
    check(exists $capa->{STLS} && exists $capa->{USER}, 'STLS and USER offered before TLS');
    $pop->starttls(SSL_verify_mode => 0) or die "FAILED: STLS: " . $pop->message;
    check(ref($pop) =~ /SSL/ || $pop->isa('IO::Socket::SSL'), 'the session is over TLS: ' . ref($pop));
    my $count = $pop->login($user, $password);
    die "FAILED: login: " . $pop->message unless defined $count;
    return ($pop, $count);
}

my ($pop, $count) = session();
check($count == 3, "three messages at login, got $count");
# In the TRANSACTION state (RFC 2449 5: USER and SASL belong to AUTHORIZATION).
my $capa = $pop->capa;
for my $cap (qw(TOP UIDL PIPELINING RESP-CODES)) {
    check(exists $capa->{$cap}, "capability $cap");
}
my ($n, $octets) = $pop->popstat;
check($n == 3, "STAT counts three");
my $sizes = $pop->list or die "FAILED: LIST\n";
check(join(' ', sort keys %$sizes) eq '1 2 3', 'LIST numbers');
my $total = 0;
$total += $_ for values %$sizes;
check($total == $octets, "LIST sizes add up to STAT's $octets");
my $uidl = $pop->uidl or die "FAILED: UIDL\n";
my %seen;
$seen{$_}++ for values %$uidl;
check(keys(%seen) == 3, 'three distinct UIDLs');

for my $i (1 .. 3) {
    my $lines = $pop->get($i) or die "FAILED: RETR $i\n";
    my $text = join '', @$lines;
    # The lines come as sent, CRLF and all (dot-stuffing undone).
    check(length($text) == $sizes->{$i},
        "message $i is as long as LIST said: " . length($text) . " against $sizes->{$i}");
    check($text =~ /^Subject: pop $i\r$/m, "message $i is 'pop $i'");
    my $word = $i == 2 ? 'wombat' : 'quokka';
    check($text =~ /Hello $i, $word\./, "body of $i");
    my $top = $pop->top($i, 0) or die "FAILED: TOP $i 0\n";
    my $head = join '', @$top;
    check($head =~ /^Subject: pop $i\r$/m && $head !~ /Hello/, "TOP $i 0 is the header alone");
}

# DELE, then RSET: nothing removed; DELE again and QUIT: removed.
$pop->delete(1) or die "FAILED: DELE 1\n";
check(!defined($pop->list(1)), 'a deleted message is not listed');
# (libnet's reset returns nothing useful on success; its reply code says.)
$pop->reset;
check($pop->ok, 'RSET: ' . $pop->message);
check(defined($pop->list(1)), 'RSET brings it back');
$pop->delete(2) or die "FAILED: DELE 2\n";
$pop->quit or die "FAILED: QUIT\n";

($pop, $count) = session();
check($count == 2, "two messages after the QUIT, got $count");
my $after = $pop->uidl;
my @kept = sort values %$after;
my @want = sort map { $uidl->{$_} } (1, 3);
check("@kept" eq "@want", "the deleted message's UIDL is gone, the others kept: @kept");
$pop->quit;
print "ok\n";
