#!/usr/bin/perl
# Perl's Net::NNTP (libnet, in every Perl: what news scripts, gateways and
# monitoring checks use) against a running tern, over STARTTLS with AUTHINFO: the
# group list, posting, a follow-up, and reading back by number and by Message-ID,
# the overview included. Run by tests/perl_libnet.rs with the empty group tern.test
# (`news_server` in tests/common).
# Prints "ok" when every check passed; dies with the reason otherwise.
#
#     perl nntp_net_nntp.pl PORT USER PASSWORD
use strict;
use warnings;
use Net::NNTP;

my ($port, $user, $password) = @ARGV;
die "usage: nntp_net_nntp.pl PORT USER PASSWORD\n" unless $password;

sub check {
    my ($ok, $what) = @_;
    die "FAILED: $what\n" unless $ok;
}

my $nntp = Net::NNTP->new('127.0.0.1', Port => $port, Timeout => 30, Reader => 1,
    Debug => $ENV{NNTP_DEBUG} ? 1 : 0) or die "FAILED: connect: $@\n";
$nntp->starttls(SSL_verify_mode => 0) or die "FAILED: STARTTLS: " . $nntp->message;
$nntp->authinfo($user, $password) or die "FAILED: AUTHINFO: " . $nntp->message;

my $active = $nntp->list or die "FAILED: LIST\n";
check(exists $active->{'tern.test'}, 'tern.test is listed: ' . join(' ', keys %$active));
my $descriptions = $nntp->newsgroups('tern.*');
# (libnet keeps the line's CR.)
check($descriptions && ($descriptions->{'tern.test'} // '') =~ /^Testing\r?$/,
    'LIST NEWSGROUPS gives the description');

# A post, then a follow-up to it.
my $first = '<perl-first@example.org>';
$nntp->post([
    "From: Alice <alice\@example.org>\n",
    "Newsgroups: tern.test\n",
    "Subject: hello from Net::NNTP\n",
    "Message-ID: $first\n",
    "\n",
    "First line.\n",
    ".a line that starts with a dot\n",
]) or die "FAILED: POST: " . $nntp->message;
$nntp->post([
    "From: Alice <alice\@example.org>\n",
    "Newsgroups: tern.test\n",
    "Subject: Re: hello from Net::NNTP\n",
    "References: $first\n",
    "\n",
    "A reply.\n",
]) or die "FAILED: POST of the follow-up: " . $nntp->message;

my ($count, $low, $high, $name) = $nntp->group('tern.test');
check($name eq 'tern.test' && $count == 2 && $high - $low == 1, "GROUP: $count articles, $low-$high");

my $article = $nntp->article($first) or die "FAILED: ARTICLE by Message-ID\n";
# Lines come with their CRLF (dot-stuffing undone); compare them with LF ends.
sub text { join('', @{ $_[0] }) =~ s/\r\n/\n/gr }
my $text = text($article);
check($text =~ /^Subject: hello from Net::NNTP$/m, 'the article by Message-ID');
check($text =~ /^\.a line that starts with a dot$/m, 'a dot-started line comes back as posted');
my $body = $nntp->body($low) or die "FAILED: BODY $low\n";
check(text($body) eq "First line.\n.a line that starts with a dot\n", 'BODY by number: ' . text($body));
my $head = $nntp->head($high) or die "FAILED: HEAD $high\n";
check(text($head) =~ /^References: \Q$first\E$/m, 'HEAD of the follow-up has its References');

my $over = $nntp->xover([$low, $high]) or die "FAILED: XOVER\n";
check(keys(%$over) == 2, 'two overview lines');
my $reply = $over->{$high};
# Subject, From, Date, Message-ID (the server's, none was given), References.
check($reply->[0] eq 'Re: hello from Net::NNTP' && $reply->[3] =~ /^<[^>]+>$/
        && $reply->[4] eq $first,
    'overview of the follow-up: ' . join(' | ', @$reply));
check($over->{$low}[3] eq $first, 'overview of the post: its own Message-ID');
my $ids = $nntp->newnews(time - 3600, 'tern.test');
check($ids && grep({ $_ eq $first } @$ids), 'NEWNEWS finds the post');
check(!defined($nntp->article('<no-such@example.org>')), 'a missing article is refused');
check($nntp->code == 430, 'with 430: ' . $nntp->code);
$nntp->quit;
print "ok\n";
