<?php
// Drives tern's IMAP listener with PHP's imap extension: the UW c-client library (as
// in Alpine and many PHP applications), an IMAP client tern did not write, with its
// own parser of every response.
//
// Usage: php imap_c_client.php IMAP_PORT
//
// alice (password "secret") must exist, with the three messages the Rust test
// delivers in INBOX (subjects "c-client 1".."c-client 3", a text part saying
// "quokka" and a base64 attachment). Prints "ok" and exits 0 when every check held;
// otherwise prints each failed check and exits 1.

$port = $argv[1];
$server = "{127.0.0.1:$port/imap/notls}";
$failed = [];

function expect(bool $cond, string $what): void
{
    global $failed;
    if (!$cond) {
        $failed[] = $what;
    }
}

function finish(): void
{
    global $failed;
    // c-client queues warnings (plain-text AUTH on loopback is expected here).
    imap_errors();
    imap_alerts();
    if ($failed) {
        foreach ($failed as $f) {
            echo "FAILED: $f\n";
        }
        exit(1);
    }
    echo "ok\n";
    exit(0);
}

$c = imap_open($server . "INBOX", "alice", "secret", 0, 1);
if ($c === false) {
    $failed[] = "imap_open: " . implode(" | ", imap_errors() ?: []);
    finish();
}

// The mailbox as a reader first sees it.
$check = imap_check($c);
expect($check->Nmsgs === 3, "imap_check: " . var_export($check, true));
$status = imap_status($c, $server . "INBOX", SA_ALL);
expect($status->messages === 3 && $status->unseen === 3 && $status->uidnext === 4,
    "imap_status: " . var_export($status, true));
$names = imap_list($c, $server, "*") ?: [];
foreach (["INBOX", "Sent", "Trash", "Drafts"] as $want) {
    expect(in_array($server . $want, $names, true), "imap_list lacks $want: " . implode(", ", $names));
}

// Headers, overview, structure and parts.
$h = imap_headerinfo($c, 2);
expect($h->subject === "c-client 2", "headerinfo subject: " . var_export($h->subject ?? null, true));
expect($h->message_id === "<c-client-2@example.org>", "headerinfo message_id");
expect($h->from[0]->mailbox === "s2" && $h->from[0]->host === "example.org", "headerinfo from");
expect(count($h->to) === 2, "headerinfo to: " . var_export($h->to, true));
$over = imap_fetch_overview($c, "1:3", 0);
expect(count($over) === 3 && $over[2]->uid === 3 && $over[2]->seen === 0,
    "fetch_overview: " . var_export($over, true));
$s = imap_fetchstructure($c, 1);
expect($s->type === TYPEMULTIPART && strtoupper($s->subtype) === "MIXED" && count($s->parts) === 2,
    "fetchstructure: " . var_export($s, true));
expect(($s->parts[1]->encoding ?? null) === ENCBASE64, "the attachment is not base64 in the structure");
expect(imap_fetchbody($c, 1, "1", FT_PEEK) === "Hello 1, quokka.", "fetchbody 1");
expect(base64_decode(imap_fetchbody($c, 1, "2", FT_PEEK)) === "\x00\x01\x02\x03\x04\x05", "fetchbody 2");
$whole = imap_fetchheader($c, 3, FT_PREFETCHTEXT) ;
expect(str_starts_with($whole, "Return-Path: <sender@example.org>\r\n"), "fetchheader with text");
expect(imap_fetch_overview($c, "1", 0)[0]->seen === 0, "FT_PEEK set \\Seen");
expect(imap_body($c, 1) !== "" && imap_fetch_overview($c, "1", 0)[0]->seen === 1,
    "reading the body did not set \\Seen");

// Search, sort, thread.
expect(imap_search($c, 'TEXT "quokka"') === [1, 3], "search TEXT quokka: " . var_export(imap_search($c, 'TEXT "quokka"'), true));
expect(imap_search($c, 'UNSEEN') === [2, 3], "search UNSEEN");
expect(imap_sort($c, SORTDATE, 1) === [3, 2, 1], "sort by date, reverse");
expect(is_array(imap_thread($c)), "thread");

// Flags.
expect(imap_setflag_full($c, "1:2", "\\Flagged \$Work"), "setflag");
expect(imap_clearflag_full($c, "2", "\$Work"), "clearflag");
$flags = array_map(fn($o) => $o->flagged, imap_fetch_overview($c, "1:3", 0));
expect($flags === [1, 1, 0], "flagged: " . var_export($flags, true));

// A folder with a non-ASCII name, APPEND with a date, COPY, MOVE.
$folder = imap_utf7_encode("Übung");
expect(imap_createmailbox($c, $server . $folder), "createmailbox Übung");
expect(imap_subscribe($c, $server . $folder), "subscribe");
expect(in_array($server . $folder, imap_lsub($c, $server, "*") ?: [], true), "lsub");
$draft = "From: alice@example.org\r\nSubject: draft\r\n\r\nnot sent\r\n";
expect(imap_append($c, $server . $folder, $draft, "\\Draft", "02-Jan-2020 03:04:05 +0100"), "append");
expect(imap_mail_copy($c, "1", $folder), "mail_copy");
expect(imap_mail_move($c, "2", $folder), "mail_move");
expect(imap_expunge($c), "expunge after move");
expect(imap_num_msg($c) === 2, "INBOX after MOVE: " . imap_num_msg($c));
expect(imap_reopen($c, $server . $folder), "reopen Übung");
expect(imap_num_msg($c) === 3, "Übung holds " . imap_num_msg($c));
$d = imap_fetch_overview($c, "1", 0)[0];
expect($d->subject === "draft" && $d->draft === 1, "the appended draft: " . var_export($d, true));
expect(imap_fetchbody($c, 1, "1", FT_PEEK) === "not sent\r\n", "the draft's text");
expect(strpos(imap_fetchheader($c, 1), "Subject: draft") !== false, "the draft's header");
$hd = imap_headerinfo($c, 1);
// The same instant (tern answers in UTC).
expect(isset($hd->MailDate) && strtotime($hd->MailDate) === strtotime("02-Jan-2020 03:04:05 +0100"),
    "the draft's INTERNALDATE: " . var_export($hd->MailDate ?? null, true));

// Delete and expunge.
expect(imap_delete($c, "1"), "delete");
expect(imap_expunge($c), "expunge");
expect(imap_num_msg($c) === 2, "after expunge: " . imap_num_msg($c));

// ACL, rename, delete the folder.
expect(imap_setacl($c, $folder, "bob", "lr"), "setacl");
$acl = imap_getacl($c, $folder);
expect(($acl["bob"] ?? null) === "lr", "getacl: " . var_export($acl, true));
$renamed = imap_utf7_encode("Projekte/Ärger");
expect(imap_reopen($c, $server . "INBOX"), "reopen INBOX");
expect(imap_renamemailbox($c, $server . $folder, $server . $renamed), "rename");
expect(in_array($server . $renamed, imap_list($c, $server, "*") ?: [], true), "the renamed folder is listed");
expect(imap_deletemailbox($c, $server . $renamed), "deletemailbox");
expect(imap_ping($c), "ping");
imap_close($c);
finish();
