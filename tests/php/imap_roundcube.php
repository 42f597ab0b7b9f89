<?php
// Roundcube's IMAP layer (rcube_imap_generic, from Debian's roundcube-core: the
// library the most widely deployed webmail reads mail with) against a running tern,
// called the way the webmail calls it: STARTTLS and the best SASL mechanism, ID,
// ENABLE QRESYNC, LIST-EXTENDED with SPECIAL-USE, STATUS, SORT and THREAD by UID,
// ESEARCH, headers and structure as its own parsers read them, parts decoded,
// flags, APPEND, COPY and MOVE, EXPUNGE, a QRESYNC reselect, quota, ACL, METADATA,
// folders made, renamed and removed. Run by tests/imap_roundcube.rs, which delivers
// the three messages of `deliver_three` ("roundcube N") to alice's INBOX.
//
//     php imap_roundcube.php ROUNDCUBE_LIB_DIR PORT USER PASSWORD
// Prints "ok" when every check passed; exits 1 with the reason otherwise.

[$_, $lib, $port, $user, $password] = $argv + [null, null, null, null, null];
if ($password === null) {
    fwrite(STDERR, "usage: imap_roundcube.php ROUNDCUBE_LIB_DIR PORT USER PASSWORD\n");
    exit(2);
}
require $lib . '/bootstrap.php';

function check($ok, $what) {
    if (!$ok) {
        fwrite(STDERR, "FAILED: $what\n");
        exit(1);
    }
}

$imap = new rcube_imap_generic();
if (getenv('IMAP_DEBUG')) {
    $imap->setDebug(true, function ($conn, $line) { fwrite(STDERR, "$line\n"); });
}
$connected = $imap->connect('127.0.0.1', $user, $password, [
    'port' => (int) $port,
    'ssl_mode' => 'tls',
    'socket_options' => ['ssl' => ['verify_peer' => false, 'verify_peer_name' => false]],
    'timeout' => 30,
]);
check($connected, 'connect over STARTTLS and log in: ' . $imap->error);
foreach (['IDLE', 'QRESYNC', 'SORT', 'THREAD=REFERENCES', 'ESEARCH', 'LIST-EXTENDED', 'METADATA'] as $cap) {
    check($imap->getCapability($cap), "capability $cap");
}
$id = $imap->id(['name' => 'Roundcube', 'version' => RCUBE_VERSION]);
check(is_array($id) && count($id) > 0, 'ID answered with the server\'s identity');
check($imap->enable('QRESYNC') !== false, 'ENABLE QRESYNC: ' . $imap->error);

// The special-use folders alone (LIST (SPECIAL-USE)), as the webmail finds its Sent
// and Trash, then the whole list with the attributes returned.
$special = $imap->listMailboxes('', '*', null, ['SPECIAL-USE']);
sort($special);
check($special == ['Archive', 'Drafts', 'Junk', 'Sent', 'Trash'], 'LIST (SPECIAL-USE): ' . json_encode($special));
$folders = $imap->listMailboxes('', '*', ['SPECIAL-USE']);
check(is_array($folders) && isset($folders['INBOX']) && isset($folders['Sent']),
    'LIST RETURN (SPECIAL-USE): ' . json_encode($folders));
$attributes = $imap->data['LIST'] ?? [];
check(in_array('\\Sent', $attributes['Sent'] ?? []) && in_array('\\Trash', $attributes['Trash'] ?? []),
    'special-use attributes: ' . json_encode($attributes));
$status = $imap->status('INBOX', ['MESSAGES', 'UNSEEN', 'UIDNEXT', 'HIGHESTMODSEQ']);
check($status['MESSAGES'] == 3 && $status['UNSEEN'] == 3 && $status['UIDNEXT'] == 4,
    'STATUS: ' . json_encode($status));

// The message list: sorted and threaded by UID, headers through its FETCH parser.
check($imap->select('INBOX'), 'SELECT: ' . $imap->error);
check($imap->data['EXISTS'] == 3, 'EXISTS 3');
$uidvalidity = $imap->data['UIDVALIDITY'];
$modseq = $imap->data['HIGHESTMODSEQ'];
check($uidvalidity > 0 && $modseq > 0, "UIDVALIDITY $uidvalidity, HIGHESTMODSEQ $modseq");
$sorted = $imap->sort('INBOX', 'DATE', 'ALL', true)->get();
check($sorted == [1, 2, 3], 'SORT DATE by UID: ' . json_encode($sorted));
$sorted = $imap->sort('INBOX', 'SUBJECT', 'ALL', true)->get();
check($sorted == [1, 2, 3], 'SORT SUBJECT by UID: ' . json_encode($sorted));
$threads = $imap->thread('INBOX', 'REFERENCES', 'ALL', true);
check($threads->count() == 3, 'THREAD REFERENCES: ' . $threads->count() . ' messages');
$found = $imap->search('INBOX', 'BODY wombat', true)->get();
check($found == [2], 'UID SEARCH BODY wombat: ' . json_encode($found));
$found = $imap->search('INBOX', 'UNSEEN', true, ['COUNT'])->count();
check($found == 3, "ESEARCH COUNT of UNSEEN: $found");

$headers = $imap->fetchHeaders('INBOX', '1:*', true, true, ['MESSAGE-ID']);
check(count($headers) == 3, 'three headers fetched');
foreach ($headers as $h) {
    check($h->subject === "roundcube {$h->uid}", "subject of {$h->uid}: {$h->subject}");
    check(strpos($h->from, "s{$h->uid}@example.org") !== false, "from of {$h->uid}: {$h->from}");
    check($h->messageID === "<roundcube-{$h->uid}@example.org>", "message-id of {$h->uid}");
    check($h->size > 0 && empty($h->flags['SEEN']), "size and flags of {$h->uid}");
    check(strtolower($h->ctype) === 'multipart/mixed', "content type of {$h->uid}: {$h->ctype}");
}

// A message opened: its structure, then each part decoded.
$structure = $imap->getStructure('INBOX', 2, true);
check(is_array($structure) && strtolower($structure[2] ?? '') === 'mixed'
    && strtolower($structure[0][0] ?? '') === 'text' && strtolower($structure[1][5] ?? '') === 'base64',
    'BODYSTRUCTURE of 2: ' . json_encode($structure));
$text = $imap->handlePartBody('INBOX', 2, true, '1', 'quoted-printable');
check($text === 'Hello 2, wombat.', 'part 1 of 2: ' . json_encode($text));
$attachment = $imap->handlePartBody('INBOX', 2, true, '2', 'base64');
check($attachment === "\x00\x01\x02\x03\x04\x05", 'part 2 of 2 decoded: ' . bin2hex($attachment));
$whole = $imap->handlePartBody('INBOX', 2, true, '');
check(strlen($whole) == $headers[2]->size, 'the whole message is RFC822.SIZE long');

// Flags.
check($imap->flag('INBOX', '1', 'SEEN'), 'flag \\Seen');
check($imap->flag('INBOX', '2', 'FLAGGED'), 'flag \\Flagged');
$unseen = $imap->search('INBOX', 'UNSEEN', true)->get();
check($unseen == [2, 3], 'UNSEEN after reading one: ' . json_encode($unseen));
$flagged = $imap->search('INBOX', 'FLAGGED', true)->get();
check($flagged == [2], 'FLAGGED: ' . json_encode($flagged));
check($imap->unflag('INBOX', '2', 'FLAGGED'), 'unflag \\Flagged');

// A draft saved, then filing: COPY and MOVE into a new folder, EXPUNGE.
$draft = "From: alice@example.org\r\nSubject: draft\r\n\r\nSaved by Roundcube.\r\n";
$appended = $imap->append('INBOX', $draft, ['SEEN', 'DRAFT']);
check($appended == 4, 'APPEND gave UID 4: ' . json_encode($appended));
check($imap->handlePartBody('INBOX', 4, true, '') === $draft, 'the draft reads back');
check($imap->createFolder('RC/Archive'), 'CREATE RC/Archive: ' . $imap->error);
check($imap->copy('1', 'INBOX', 'RC/Archive'), 'COPY: ' . $imap->error);
check($imap->move('3', 'INBOX', 'RC/Archive'), 'MOVE: ' . $imap->error);
check($imap->countMessages('RC/Archive') == 2, 'two in RC/Archive');
check($imap->flag('INBOX', '4', 'DELETED'), 'flag the draft \\Deleted');
check($imap->expunge('INBOX', '4'), 'UID EXPUNGE 4: ' . $imap->error);
check($imap->countMessages('INBOX') == 2, 'two left in INBOX');

// Reselect with QRESYNC from the first SELECT's state: what changed since comes back
// as FETCH and VANISHED (EARLIER).
check($imap->close(), 'CLOSE');
check($imap->select('INBOX', [$uidvalidity, $modseq]), 'SELECT (QRESYNC): ' . $imap->error);
// The moved message (3) and the expunged draft (4) are gone; 1 and 2 changed flags.
$vanished = $imap->data['VANISHED'] ?? null;
check($vanished === '3:4', 'VANISHED (EARLIER): ' . json_encode($vanished));
check($imap->data['EXISTS'] == 2, 'two messages after the QRESYNC SELECT');

// Account settings: quota, ACL, metadata.
$quota = $imap->getQuota();
check(is_array($quota), 'GETQUOTAROOT answered: ' . $imap->error);
$acl = $imap->getACL('INBOX');
check(is_array($acl) && isset($acl[$user]), 'GETACL: ' . json_encode($acl));
$rights = $imap->myRights('INBOX');
check(is_array($rights) && in_array('l', $rights) && in_array('a', $rights), 'MYRIGHTS: ' . json_encode($rights));
check($imap->setMetadata('INBOX', ['/private/comment' => 'kept by roundcube']), 'SETMETADATA: ' . $imap->error);
$meta = $imap->getMetadata('INBOX', ['/private/comment']);
check(($meta['INBOX']['/private/comment'] ?? null) === 'kept by roundcube', 'GETMETADATA: ' . json_encode($meta));

// Folders renamed and removed.
check($imap->renameFolder('RC/Archive', 'RC/Kept'), 'RENAME: ' . $imap->error);
check($imap->countMessages('RC/Kept') == 2, 'the messages went with the folder');
check($imap->deleteFolder('RC/Kept'), 'DELETE: ' . $imap->error);
$left = $imap->listMailboxes('', 'RC/*');
check(is_array($left) && !in_array('RC/Kept', $left), 'RC/Kept gone: ' . json_encode($left));

// A failing command is an error the library reports, and the session goes on.
check(!$imap->select('No/Such/Folder'), 'selecting a missing folder fails');
check($imap->select('INBOX') && $imap->data['EXISTS'] == 2, 'the session goes on');
$imap->closeConnection();
echo "ok\n";
