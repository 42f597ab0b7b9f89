<?php
// Horde_Imap_Client (Debian's php-horde-imap-client: the IMAP library of Horde's
// webmail and other PHP applications, with its own strict parser of every response
// and its own MIME structure) against a running tern. Run by tests/imap_horde.rs,
// which delivers the three messages of `deliver_three` ("horde N") to alice's INBOX.
//
//     php imap_horde.php PORT USER PASSWORD
// Prints "ok" when every check passed; exits 1 with the reason otherwise.

[$_, $port, $user, $password] = $argv + [null, null, null, null];
if ($password === null) {
    fwrite(STDERR, "usage: imap_horde.php PORT USER PASSWORD\n");
    exit(2);
}
set_include_path(get_include_path() . PATH_SEPARATOR . '/usr/share/php');
spl_autoload_register(function ($class) {
    $file = str_replace(['_', '\\'], '/', $class) . '.php';
    if (stream_resolve_include_path($file) !== false) {
        require_once $file;
    }
});

function check($ok, $what) {
    if (!$ok) {
        fwrite(STDERR, "FAILED: $what\n");
        exit(1);
    }
}

function ids(array $uids) {
    return new Horde_Imap_Client_Ids($uids);
}

try {
    $c = new Horde_Imap_Client_Socket([
        'username' => $user,
        'password' => $password,
        'hostspec' => '127.0.0.1',
        'port' => (int) $port,
        'secure' => 'tls',
        'context' => ['ssl' => ['verify_peer' => false, 'verify_peer_name' => false]],
        'timeout' => 30,
        'debug' => getenv('IMAP_DEBUG') ? 'php://stderr' : null,
        // A cache configured (one that keeps nothing) is what makes the library
        // ENABLE QRESYNC at login, as Horde's webmail runs it.
        'cache' => [
            'backend' => new Horde_Imap_Client_Cache_Backend_Null(),
            'fields' => [Horde_Imap_Client::FETCH_ENVELOPE, Horde_Imap_Client::FETCH_FLAGS,
                Horde_Imap_Client::FETCH_STRUCTURE, Horde_Imap_Client::FETCH_SIZE],
        ],
    ]);
    $c->login();
    foreach (['IDLE', 'CONDSTORE', 'QRESYNC', 'SORT', 'THREAD', 'ESEARCH', 'MOVE', 'METADATA'] as $cap) {
        check($c->capability->query($cap), "capability $cap");
    }

    // Folders with their attributes.
    $list = $c->listMailboxes('*', Horde_Imap_Client::MBOX_ALL, ['attributes' => true, 'special_use' => true]);
    check(isset($list['INBOX']) && isset($list['Sent']), 'LIST: ' . implode(' ', array_keys($list)));
    check(in_array('\\sent', array_map('strtolower', $list['Sent']['attributes'])),
        'Sent is \\Sent: ' . json_encode($list['Sent']['attributes']));
    $status = $c->status('INBOX', Horde_Imap_Client::STATUS_MESSAGES | Horde_Imap_Client::STATUS_UNSEEN
        | Horde_Imap_Client::STATUS_UIDNEXT | Horde_Imap_Client::STATUS_HIGHESTMODSEQ);
    check($status['messages'] == 3 && $status['unseen'] == 3 && $status['uidnext'] == 4
        && $status['highestmodseq'] > 0, 'STATUS: ' . json_encode($status));

    // Everything a mail list and a message view read, in one FETCH.
    $q = new Horde_Imap_Client_Fetch_Query();
    $q->envelope();
    $q->structure();
    $q->flags();
    $q->size();
    $q->fullText(['peek' => true]);
    $q->bodyPart('1', ['peek' => true, 'decode' => true]);
    $q->bodyPart('2', ['peek' => true, 'decode' => true]);
    $res = $c->fetch('INBOX', $q, ['ids' => ids([1, 2, 3])]);
    check(count($res) == 3, 'three messages fetched');
    foreach ($res as $uid => $m) {
        $env = $m->getEnvelope();
        check($env->subject === "horde $uid", "subject of $uid: {$env->subject}");
        check($env->from[0]->bare_address === "s$uid@example.org", "from of $uid");
        check($env->from[0]->personal === "Sender $uid", "from name of $uid");
        check(count($env->to) == 2, "two recipients of $uid");
        check($env->message_id === "<horde-$uid@example.org>", "message-id of $uid");
        $part = $m->getStructure();
        check($part->getType() === 'multipart/mixed', "structure of $uid: " . $part->getType());
        check($part->getPart('2')->getType() === 'application/octet-stream', "part 2 type of $uid");
        check(strlen($m->getFullMsg()) == $m->getSize(), "RFC822.SIZE of $uid is its length");
        $word = $uid == 2 ? 'wombat' : 'quokka';
        check($m->getBodyPart('1') === "Hello $uid, $word.", "part 1 of $uid: " . json_encode($m->getBodyPart('1')));
        $bin = $m->getBodyPart('2');
        if (!$m->getBodyPartDecode('2')) {
            $bin = base64_decode($bin);
        }
        check($bin === "\x00\x01\x02\x03\x04\x05", "part 2 of $uid decoded: " . bin2hex($bin));
        check($m->getFlags() == ['\\recent'] || $m->getFlags() == [], "flags of $uid: " . json_encode($m->getFlags()));
    }

    // Search, sort, thread.
    $s = new Horde_Imap_Client_Search_Query();
    $s->text('wombat', true);
    $found = $c->search('INBOX', $s);
    check($found['match']->ids == [2], 'BODY wombat: ' . json_encode($found['match']->ids));
    $s = new Horde_Imap_Client_Search_Query();
    $s->headerText('From', 's3@example.org');
    $found = $c->search('INBOX', $s);
    check($found['match']->ids == [3], 'FROM s3: ' . json_encode($found['match']->ids));
    $sorted = $c->search('INBOX', null, ['sort' => [Horde_Imap_Client::SORT_REVERSE, Horde_Imap_Client::SORT_SUBJECT]]);
    check($sorted['match']->ids == [3, 2, 1], 'SORT REVERSE SUBJECT: ' . json_encode($sorted['match']->ids));
    $thread = $c->thread('INBOX', ['criteria' => Horde_Imap_Client::THREAD_REFERENCES]);
    check(count($thread) == 3, 'THREAD REFERENCES: ' . count($thread));

    // Flags with CONDSTORE: only what changed since a modseq comes back.
    $q = new Horde_Imap_Client_Fetch_Query();
    $q->modseq();
    $modseq = max(array_map(function ($m) { return $m->getModSeq(); },
        iterator_to_array($c->fetch('INBOX', $q, ['ids' => ids([1, 2, 3])]))));
    check($modseq > 0 && $modseq <= $status['highestmodseq'], "MODSEQ of the messages: $modseq");
    $c->store('INBOX', ['add' => ['\\Seen', '\\Flagged'], 'ids' => ids([1])]);
    $c->store('INBOX', ['add' => ['$Label1'], 'ids' => ids([2])]);
    $q = new Horde_Imap_Client_Fetch_Query();
    $q->flags();
    $q->modseq();
    $changed = $c->fetch('INBOX', $q, ['ids' => ids([1, 2, 3]), 'changedsince' => $modseq]);
    check(array_keys(iterator_to_array($changed)) == [1, 2], 'CHANGEDSINCE: ' . json_encode(array_keys(iterator_to_array($changed))));
    $flags = array_map('strtolower', $changed[1]->getFlags());
    check(in_array('\\seen', $flags) && in_array('\\flagged', $flags), 'flags of 1: ' . json_encode($flags));
    check(in_array('$label1', array_map('strtolower', $changed[2]->getFlags())), 'keyword on 2');
    check($changed[2]->getModSeq() > $changed[1]->getModSeq(), 'the later store has the higher MODSEQ');
    $unseen = new Horde_Imap_Client_Search_Query();
    $unseen->flag('\\Seen', false);
    check($c->search('INBOX', $unseen)['match']->ids == [2, 3], 'UNSEEN');

    // APPEND with APPENDUID; COPY and MOVE into a new folder; EXPUNGE.
    // Over 100 octets: shorter, Horde sends the message as a quoted string once
    // UTF8=ACCEPT is on, line ends and all, which no server can take.
    $text = "From: horde@example.org\r\nSubject: appended\r\nMIME-Version: 1.0\r\n"
        . "Content-Type: text/plain; charset=utf-8\r\n\r\nWritten by Horde.\r\n";
    $appended = $c->append('INBOX', [['data' => $text, 'flags' => ['\\Seen']]]);
    check($appended->ids == [4], 'APPENDUID: ' . json_encode($appended->ids));
    $q = new Horde_Imap_Client_Fetch_Query();
    $q->fullText(['peek' => true]);
    check($c->fetch('INBOX', $q, ['ids' => ids([4])])[4]->getFullMsg() === $text, 'the appended message reads back');
    $c->createMailbox('Horde/Archive');
    $copied = $c->copy('INBOX', 'Horde/Archive', ['ids' => ids([1])]);
    check(is_array($copied) && isset($copied[1]), 'COPYUID: ' . json_encode($copied));
    $c->copy('INBOX', 'Horde/Archive', ['ids' => ids([2]), 'move' => true]);
    check($c->status('Horde/Archive', Horde_Imap_Client::STATUS_MESSAGES)['messages'] == 2, 'two in Horde/Archive');
    $c->store('INBOX', ['add' => ['\\Deleted'], 'ids' => ids([3])]);
    $c->expunge('INBOX', ['ids' => ids([3])]);
    $all = $c->search('INBOX');
    check($all['match']->ids == [1, 4], 'INBOX after MOVE and EXPUNGE: ' . json_encode($all['match']->ids));

    // Quota, ACL, metadata; rename and delete.
    $roots = $c->getQuotaRoot('INBOX');
    check(is_array($roots) && count($roots) == 1, 'GETQUOTAROOT: ' . json_encode($roots));
    $acl = $c->getACL('INBOX');
    check(isset($acl[$user]), 'GETACL: ' . json_encode(array_keys($acl)));
    $mine = $c->getMyACLRights('INBOX');
    check(isset($mine[Horde_Imap_Client::ACL_ADMINISTER]) && isset($mine[Horde_Imap_Client::ACL_LOOKUP]),
        'MYRIGHTS: ' . strval($mine));
    $c->setMetadata('INBOX', ['/private/comment' => 'kept by horde']);
    $meta = $c->getMetadata('INBOX', ['/private/comment']);
    check(($meta['INBOX']['/private/comment'] ?? null) === 'kept by horde', 'GETMETADATA: ' . json_encode($meta));
    $c->renameMailbox('Horde/Archive', 'Horde/Kept');
    check($c->status('Horde/Kept', Horde_Imap_Client::STATUS_MESSAGES)['messages'] == 2, 'renamed with its messages');
    $c->deleteMailbox('Horde/Kept');
    check(count($c->listMailboxes('Horde/Kept')) == 0, 'Horde/Kept deleted');

    // A NO raises, and the session goes on.
    try {
        $c->openMailbox('No/Such/Folder');
        check(false, 'selecting a missing folder must fail');
    } catch (Horde_Imap_Client_Exception $e) {
        check(true, 'NO raised');
    }
    check($c->status('INBOX', Horde_Imap_Client::STATUS_MESSAGES)['messages'] == 2, 'the session goes on');
    $c->logout();
} catch (Horde_Imap_Client_Exception $e) {
    fwrite(STDERR, 'FAILED: ' . get_class($e) . ': ' . $e->getMessage() . ' ' . ($e->details ?? '') . "\n");
    exit(1);
}
echo "ok\n";
