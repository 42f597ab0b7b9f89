-- imapfilter (a mail filtering tool run against the server, with its own IMAP
-- client written in C and rules in Lua) against a running tern, as its users write
-- rules: select messages by what they contain, then flag, copy, move and delete them.
-- Run by tests/imap_imapfilter.rs, which delivers the three messages it expects to
-- alice's INBOX ("imapfilter N" from sN@example.org; the second says "wombat", the
-- others "quokka"). Prints "ok" when every check passed; fails with the reason.
--
--     TERN_IMAP_PORT=... TERN_USER=... TERN_PASSWORD=... imapfilter -c imapfilter.lua

options.timeout = 30
-- The server's certificate is self-signed: the test accepts it when asked, as a
-- user would, and does not check its name against 127.0.0.1.
options.certificates = true
options.hostnames = false
options.info = false

local function check(ok, what)
  if not ok then error("FAILED: " .. what, 2) end
end

local account = IMAP {
  server = '127.0.0.1',
  port = tonumber(os.getenv('TERN_IMAP_PORT')),
  username = os.getenv('TERN_USER'),
  password = os.getenv('TERN_PASSWORD'),
}

-- The mailbox's counts, as imapfilter reads them with STATUS.
local exist, recent, unseen, uidnext = account.INBOX:check_status()
check(exist == 3 and unseen == 3 and uidnext == 4,
  string.format('STATUS: %s messages, %s unseen, next %s', exist, unseen, uidnext))

-- Selection by SEARCH on the server, combined as sets.
local all = account.INBOX:select_all()
check(#all == 3, 'select_all found ' .. #all)
local wombat = account.INBOX:contain_body('wombat')
check(#wombat == 1, 'contain_body wombat found ' .. #wombat)
local from3 = account.INBOX:contain_from('s3@example.org')
check(#from3 == 1, 'contain_from s3 found ' .. #from3)
local either = wombat + from3
check(#either == 2, 'union of the two found ' .. #either)
local neither = all - either
check(#neither == 1, 'the rest: ' .. #neither)
-- A regular expression is matched by imapfilter itself on the fetched header.
local matched = account.INBOX:match_subject('^imapfilter [12]$')
check(#matched == 2, 'match_subject found ' .. #matched)

-- What the rules read of one message.
local mbox, uid = table.unpack(wombat[1])
local msg = mbox[uid]
check(msg:fetch_field('Subject') == 'Subject: imapfilter 2', 'Subject field: ' .. tostring(msg:fetch_field('Subject')))
local header = msg:fetch_header()
check(header:find('Message%-ID: <imapfilter%-2@example.org>'), 'header has the Message-ID')
local text = msg:fetch_message()
check(#text == msg:fetch_size(), 'message length ' .. #text .. ' against RFC822.SIZE ' .. tostring(msg:fetch_size()))
check(text:find('Hello 2, wombat.', 1, true), 'message text')
local structure = msg:fetch_structure()
check(structure and structure['1'] and structure['1'].type:lower() == 'text/plain', 'part 1 is text/plain')
check(structure['2'] and structure['2'].type:lower() == 'application/octet-stream', 'part 2 is the attachment')
check(msg:fetch_part('1') == 'Hello 2, wombat.', 'part 1: ' .. tostring(msg:fetch_part('1')))

-- Flags: written for a set, read back by a search.
wombat:mark_flagged()
wombat:add_flags({ '$Label1' })
all:mark_seen()
check(#account.INBOX:is_unseen() == 0, 'all seen')
check(#account.INBOX:is_flagged() == 1, 'one flagged')
check(#account.INBOX:has_keyword('$Label1') == 1, 'one with $Label1')
local flags = msg:fetch_flags()
local has = {}
for _, f in ipairs(flags) do has[f] = true end
check(has['\\Flagged'] and has['\\Seen'] and has['$Label1'], 'flags of the message read back')

-- Rules that file mail: a folder made, a copy and a move into it.
account:create_mailbox('Filtered/Archive')
local mailboxes = account:list_all('Filtered')
local listed = false
for _, m in ipairs(mailboxes) do if m == 'Filtered/Archive' then listed = true end end
check(listed, 'Filtered/Archive listed')
from3:copy_messages(account['Filtered/Archive'])
wombat:move_messages(account['Filtered/Archive'])
local n = account['Filtered/Archive']:check_status()
check(n == 2, 'two filed, found ' .. tostring(n))
check(#account.INBOX:select_all() == 2, 'the moved one left INBOX')

-- Deletion: \Deleted and expunged by the tool.
account.INBOX:contain_from('s3@example.org'):delete_messages()
check(#account.INBOX:select_all() == 1, 'one left in INBOX after delete')

-- APPEND, then found by a search.
account.INBOX:append_message('From: filter@example.org\r\nSubject: appended\r\n\r\nBy imapfilter.\r\n')
check(#account.INBOX:contain_subject('appended') == 1, 'the appended message found')

account['Filtered/Archive']:select_all():delete_messages()
account:delete_mailbox('Filtered/Archive')
check(#account:list_all('Filtered/Archive') == 0, 'Filtered/Archive deleted')
print('ok')
