#!/usr/bin/perl
# A session of Mail::IMAPClient (the Perl library imapsync and many mail scripts are
# built on) against a running tern, as its users drive it: by UID, over STARTTLS and
# over COMPRESS=DEFLATE, with its own parsing of BODYSTRUCTURE and ENVELOPE. Run by
# tests/imap_perl.rs, which delivers the three messages it expects to alice's INBOX:
# "perl N" from sN@example.org, a text part "Hello N, WORD." (WORD is "wombat" for
# the second, "quokka" otherwise) and a base64 attachment of the bytes 0..5.
# Prints "ok" when every check passed; dies with the reason otherwise.
#
#     perl imap_mail_imapclient.pl PORT USER PASSWORD
use strict;
use warnings;
use Mail::IMAPClient;
use IO::Socket::SSL qw(SSL_VERIFY_NONE);

my ($port, $user, $password) = @ARGV;
die "usage: imap_mail_imapclient.pl PORT USER PASSWORD\n" unless $password;

sub check {
    my ($ok, $what) = @_;
    die "FAILED: $what\n" unless $ok;
}

sub connect_as {
    my (%extra) = @_;
    my $imap = Mail::IMAPClient->new(
        Server   => '127.0.0.1',
        Port     => $port,
        User     => $user,
        Password => $password,
        Uid      => 1,
        Peek     => 1,
        Starttls => [ SSL_verify_mode => SSL_VERIFY_NONE ],
        Timeout  => 30,
        Debug    => $ENV{IMAP_DEBUG} ? 1 : 0,
        %extra,
    ) or die "FAILED: connect and log in: $@\n";
    check($imap->IsAuthenticated, "logged in");
    return $imap;
}

my $imap = connect_as();
check($imap->Socket->isa('IO::Socket::SSL'), "STARTTLS took the session to TLS");
for my $cap (qw(IMAP4REV1 IDLE UIDPLUS MOVE NAMESPACE QUOTA ACL SORT)) {
    check($imap->has_capability($cap), "capability $cap");
}

# The mailbox as the library sees it.
$imap->select('INBOX') or die "FAILED: select: " . $imap->LastError . "\n";
check($imap->message_count('INBOX') == 3, "three messages in INBOX");
my @uids = sort { $a <=> $b } @{ $imap->messages or die "messages\n" };
check("@uids" eq "1 2 3", "UIDs 1 2 3, got @uids");

my $info = $imap->fetch_hash('FLAGS', 'RFC822.SIZE', 'INTERNALDATE')
    or die "FAILED: fetch_hash: " . $imap->LastError . "\n";
for my $uid (@uids) {
    my $whole = $imap->message_string($uid)
        or die "FAILED: message_string $uid: " . $imap->LastError . "\n";
    check(length($whole) == $info->{$uid}{'RFC822.SIZE'},
        "RFC822.SIZE of $uid is the length of its text");
    check($info->{$uid}{INTERNALDATE} =~ /^\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}$/,
        "INTERNALDATE of $uid: $info->{$uid}{INTERNALDATE}");
    my $h = $imap->parse_headers($uid, 'Subject', 'From', 'Message-ID');
    check($h->{Subject}[0] eq "perl $uid", "Subject of $uid: $h->{Subject}[0]");
    check($h->{From}[0] =~ /<s$uid\@example\.org>/, "From of $uid");
    check($h->{'Message-ID'}[0] eq "<perl-$uid\@example.org>", "Message-ID of $uid");
}

# Structure and parts, through the library's own BODYSTRUCTURE parser.
my $bs = $imap->get_bodystructure(2) or die "FAILED: get_bodystructure\n";
check(lc($bs->bodytype) eq 'multipart' && lc($bs->bodysubtype) eq 'mixed',
    "message 2 is multipart/mixed");
my @parts = $bs->parts;
check("@parts" eq "1 2", "parts of message 2: @parts");
my $text = $imap->bodypart_string(2, '1');
# The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1).
check($text eq "Hello 2, wombat.", "part 1 of message 2: '$text'");
my $attachment = $imap->bodypart_string(2, '2');
check($attachment eq 'AAECAwQF', "part 2 of message 2 as sent: '$attachment'");
my $env = $imap->get_envelope(3) or die "FAILED: get_envelope\n";
check($env->subject eq '"perl 3"' || $env->subject eq 'perl 3', "envelope subject: " . $env->subject);
my @to = @{ $env->to_addresses };
check(@to == 2 && $to[0] =~ /<alice\@example\.org>/ && $to[1] =~ /Bob B.*<bob\@example\.org>/,
    "envelope To: @to");

# Search, sort, thread.
my @hits = @{ $imap->search('TEXT', $imap->Quote('wombat')) };
check("@hits" eq "2", "TEXT wombat finds 2, got @hits");
@hits = @{ $imap->search('FROM', $imap->Quote('s3@example.org')) };
check("@hits" eq "3", "FROM s3 finds 3, got @hits");
my @sorted = @{ $imap->sort('(REVERSE SUBJECT)', 'UTF-8', 'ALL') };
check("@sorted" eq "3 2 1", "SORT (REVERSE SUBJECT): @sorted");
my $threads = $imap->thread('REFERENCES', 'UTF-8', 'ALL');
check($threads && @$threads == 3, "THREAD REFERENCES: three threads");

# Flags, written by one command and read back by another.
my @unread = sort { $a <=> $b } @{ $imap->unseen };
check("@unread" eq "1 2 3", "reading with BODY.PEEK left all unseen: @unread");
# Without Peek the library fetches BODY[], which sets \Seen (RFC 3501 6.4.5).
$imap->Peek(0);
$imap->message_string(1) or die "FAILED: message_string without Peek\n";
$imap->Peek(1);
check(grep({ $_ eq '\\Seen' } $imap->flags(1)), "BODY[] set \\Seen on 1");
$imap->set_flag('\\Flagged', 2) or die "FAILED: set_flag\n";
$imap->set_flag('$Label1', 3) or die "FAILED: set_flag keyword\n";
my @unseen = sort { $a <=> $b } @{ $imap->unseen };
check("@unseen" eq "2 3", "unseen: @unseen");
check(grep({ $_ eq '\\Flagged' } $imap->flags(2)), "\\Flagged on 2");
check(grep({ $_ eq '$Label1' } $imap->flags(3)), "\$Label1 on 3");
$imap->unset_flag('\\Flagged', 2) or die "FAILED: unset_flag\n";
check(!grep({ $_ eq '\\Flagged' } $imap->flags(2)), "\\Flagged off 2");

# APPEND with flags and a date; the UID comes from APPENDUID.
my $new = "From: perl\@example.org\r\nSubject: appended\r\n\r\nWritten by Perl.\r\n";
my $appended = $imap->append_string('INBOX', $new, '\\Seen', '01-Jan-2025 10:00:00 +0000')
    or die "FAILED: append_string: " . $imap->LastError . "\n";
check($appended == 4, "APPENDUID gave 4, got $appended");
check($imap->message_string(4) eq $new, "the appended message reads back byte for byte");
check($imap->internaldate(4) =~ /^01-Jan-2025 10:00:00/, "its date: " . $imap->internaldate(4));

# Folders: a hierarchy, COPY and MOVE into it, STATUS.
my $sep = $imap->separator or die "FAILED: separator\n";
my $archive = "Perl${sep}Archive";
$imap->create($archive) or die "FAILED: create $archive: " . $imap->LastError . "\n";
check($imap->exists($archive), "$archive exists");
check(grep({ $_ eq $archive } $imap->folders), "$archive listed");
my $copied = $imap->copy($archive, 1) or die "FAILED: copy: " . $imap->LastError . "\n";
my $moved = $imap->move($archive, 2) or die "FAILED: move: " . $imap->LastError . "\n";
my $status = join '', $imap->status($archive, 'MESSAGES', 'UNSEEN');
check($status =~ /MESSAGES 2/ && $status =~ /UNSEEN 1/, "STATUS $archive: $status");
check($imap->unseen_count($archive) == 1, "one unseen in $archive");
# This library's move is COPY, then \Deleted on the original: it stays until EXPUNGE.
$imap->select('INBOX');
@uids = sort { $a <=> $b } @{ $imap->messages };
check("@uids" eq "1 2 3 4", "INBOX after the move: @uids");
check(grep({ $_ eq '\\Deleted' } $imap->flags(2)), "the moved original is \\Deleted");

# Delete and expunge.
$imap->delete_message(3) or die "FAILED: delete_message\n";
$imap->expunge or die "FAILED: expunge: " . $imap->LastError . "\n";
@uids = sort { $a <=> $b } @{ $imap->messages };
check("@uids" eq "1 4", "INBOX after the expunge: @uids");

# IDLE, woken by an APPEND from a second session.
my $idle_tag = $imap->idle or die "FAILED: idle: " . $imap->LastError . "\n";
my $other = connect_as();
$other->append_string('INBOX', "Subject: while idle\r\n\r\nHi.\r\n")
    or die "FAILED: append from the second session\n";
my $heard = '';
for (1 .. 10) {
    my $lines = $imap->idle_data(1) or last;
    $heard .= join('', @$lines);
    last if $heard =~ /\* 3 EXISTS/;
}
check($heard =~ /\* 3 EXISTS/, "IDLE heard the new message: '$heard'");
$imap->done($idle_tag) or die "FAILED: done: " . $imap->LastError . "\n";

# COMPRESS=DEFLATE in the second session, then the same message read through it.
$other->compress or die "FAILED: compress: " . $other->LastError . "\n";
$other->examine('INBOX') or die "FAILED: examine over COMPRESS\n";
check($other->message_string(4) eq $new, "a message read over COMPRESS=DEFLATE");
$other->logout;

# Rename, subscriptions, delete.
my $renamed = "Perl${sep}Kept";
$imap->rename($archive, $renamed) or die "FAILED: rename: " . $imap->LastError . "\n";
check(!$imap->exists($archive) && $imap->exists($renamed), "renamed to $renamed");
check($imap->message_count($renamed) == 2, "the messages moved with it");
$imap->subscribe($renamed) or die "FAILED: subscribe\n";
check(grep({ $_ eq $renamed } $imap->subscribed), "$renamed subscribed");
$imap->unsubscribe($renamed) or die "FAILED: unsubscribe\n";
$imap->delete($renamed) or die "FAILED: delete: " . $imap->LastError . "\n";
check(!$imap->exists($renamed), "$renamed deleted");

# What a user's account settings show.
my $ns = $imap->namespace or die "FAILED: namespace\n";
check(ref $ns eq 'ARRAY' && ref $ns->[0] eq 'ARRAY', "personal namespace");
my $quota = join '', map { ref $_ ? @$_ : $_ } $imap->getquotaroot('INBOX');
check($quota =~ /\* QUOTAROOT "?INBOX"? ""/, "GETQUOTAROOT names the user's root: $quota");
my $acl = $imap->getacl('INBOX') or die "FAILED: getacl: " . $imap->LastError . "\n";
check(exists $acl->{$user}, "the owner is in the ACL of INBOX");
my $rights = $imap->myrights('INBOX') or die "FAILED: myrights\n";
$rights = join '', grep { /^\* MYRIGHTS/ } @$rights if ref $rights;
my ($held) = $rights =~ /(\S+)\s*$/;
check($held =~ /l/ && $held =~ /r/ && $held =~ /a/, "MYRIGHTS on INBOX: $rights");

# A failing command is a NO the library reports, and the session goes on.
check(!$imap->select('No/Such/Folder'), "selecting a missing folder fails");
check($imap->LastError =~ /NO/i, "with a NO: " . $imap->LastError);
check($imap->select('INBOX') && $imap->message_count('INBOX') == 3, "the session goes on");

$imap->logout or die "FAILED: logout\n";
print "ok\n";
