# A session of Ruby's Net::IMAP (the standard library's client, under the mail gem's
# IMAP retriever and Rails' Action Mailbox) against a running tern. Net::IMAP parses
# every response strictly and raises on one it does not understand, so a malformed
# answer anywhere in the session fails it. Run by tests/imap_ruby.rs, which delivers
# the three messages it expects to alice's INBOX: "ruby N" from sN@example.org, a
# text part "Hello N, WORD." (WORD is "wombat" for the second, "quokka" otherwise)
# and a base64 attachment of the bytes 0..5. Prints "ok" when every check passed.
#
#     ruby imap_net_imap.rb PORT USER PASSWORD
require "net/imap"
require "openssl"
require "date"

port, user, password = ARGV
abort "usage: imap_net_imap.rb PORT USER PASSWORD" unless password

def check(ok, what)
  raise "FAILED: #{what}" unless ok
end

def connect(port, user, password)
  imap = Net::IMAP.new("127.0.0.1", port: Integer(port))
  imap.starttls(verify_mode: OpenSSL::SSL::VERIFY_NONE)
  imap.authenticate("PLAIN", user, password)
  imap
end

imap = connect(port, user, password)
caps = imap.capability
%w[IMAP4REV1 IDLE UIDPLUS MOVE CONDSTORE SORT THREAD=REFERENCES QUOTA ACL].each do |c|
  check(caps.include?(c), "capability #{c}")
end

# The folder list and the mailbox's state.
names = imap.list("", "*").map(&:name)
check(names.include?("INBOX"), "INBOX listed: #{names}")
imap.select("INBOX")
check(imap.responses["EXISTS"].last == 3, "3 EXISTS")
uidvalidity = imap.responses["UIDVALIDITY"].last
check(uidvalidity.is_a?(Integer) && uidvalidity > 0, "UIDVALIDITY #{uidvalidity}")
status = imap.status("INBOX", %w[MESSAGES UNSEEN UIDNEXT])
check(status == { "MESSAGES" => 3, "UNSEEN" => 3, "UIDNEXT" => 4 }, "STATUS #{status}")

# What a mail list shows, then each message whole.
data = imap.uid_fetch(1..3, %w[UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE])
check(data.map { |d| d.attr["UID"] } == [1, 2, 3], "UIDs 1..3")
data.each do |d|
  uid = d.attr["UID"]
  env = d.attr["ENVELOPE"]
  check(env.subject == "ruby #{uid}", "subject of #{uid}: #{env.subject}")
  check(env.from[0].mailbox == "s#{uid}" && env.from[0].host == "example.org", "from of #{uid}")
  check(env.from[0].name == "Sender #{uid}", "from name of #{uid}")
  check(env.to.map { |a| "#{a.mailbox}@#{a.host}" } == %w[alice@example.org bob@example.org],
        "to of #{uid}")
  check(env.message_id == "<ruby-#{uid}@example.org>", "message-id of #{uid}")
  # New mail: \Recent in the first session to see it, and no other flag.
  check(d.attr["FLAGS"] == [:Recent], "only \\Recent on #{uid}: #{d.attr["FLAGS"]}")
  bs = d.attr["BODYSTRUCTURE"]
  check(bs.multipart? && bs.media_type == "MULTIPART" && bs.subtype == "MIXED", "multipart #{uid}")
  check(bs.parts.size == 2 && bs.parts[0].media_type == "TEXT" && bs.parts[1].encoding == "BASE64",
        "parts of #{uid}")
  whole = imap.uid_fetch(uid, "BODY.PEEK[]")[0].attr["BODY[]"]
  check(whole.bytesize == d.attr["RFC822.SIZE"], "RFC822.SIZE of #{uid} is its length")
  # Delivery puts its trace fields (Return-Path, Received) above the message.
  check(whole.include?("\r\nFrom: Sender #{uid} <s#{uid}@example.org>\r\n") &&
        whole.end_with?("AAECAwQF\r\n--b#{uid}--\r\n"), "text of #{uid}")
end
part = imap.uid_fetch(2, "BODY.PEEK[1]")[0].attr["BODY[1]"]
check(part == "Hello 2, wombat.", "part 1 of 2: #{part.inspect}")
header = imap.uid_fetch(3, "BODY.PEEK[HEADER.FIELDS (SUBJECT)]")[0].attr
check(header.values.include?("Subject: ruby 3\r\n\r\n"), "header field of 3: #{header}")

# Search, sort, thread.
check(imap.uid_search(["BODY", "wombat"]) == [2], "BODY wombat")
check(imap.uid_search(["FROM", "s3@example.org"]) == [3], "FROM s3")
check(imap.uid_sort(["REVERSE", "SUBJECT"], ["ALL"], "UTF-8") == [3, 2, 1], "SORT")
threads = imap.uid_thread("REFERENCES", ["ALL"], "UTF-8")
check(threads.map(&:seqno).sort == [1, 2, 3], "THREAD: #{threads.inspect}")

# Flags with CONDSTORE: the store answers with the new modseqs, and a fetch of what
# changed since the first one finds only the second change.
stored = imap.uid_store(1, "+FLAGS", [:Seen, :Flagged])
check(stored[0].attr["FLAGS"].sort == [:Flagged, :Recent, :Seen], "STORE answer: #{stored[0].attr}")
first = imap.uid_fetch(1, %w[MODSEQ])[0].attr["MODSEQ"]
imap.uid_store(2, "+FLAGS", ["$Label1"])
changed = imap.uid_fetch(1..3, %w[FLAGS], ["CHANGEDSINCE", first])
check(changed.map { |d| d.attr["UID"] } == [2], "CHANGEDSINCE #{first}: #{changed.inspect}")
check(changed[0].attr["FLAGS"] == ["$Label1", :Recent], "keyword on 2: #{changed[0].attr}")
check(imap.uid_search(["UNSEEN"]) == [2, 3], "UNSEEN")

# APPEND, with its APPENDUID; COPY and MOVE into a new folder.
text = "From: ruby@example.org\r\nSubject: appended\r\n\r\nWritten by Ruby.\r\n"
res = imap.append("INBOX", text, [:Seen], Time.utc(2025, 1, 2, 3, 4, 5))
code = res.data.code
check(code.name == "APPENDUID" && code.data.split[1] == "4", "APPENDUID: #{code.inspect}")
check(imap.uid_fetch(4, "BODY.PEEK[]")[0].attr["BODY[]"] == text, "appended text reads back")
date = imap.uid_fetch(4, "INTERNALDATE")[0].attr["INTERNALDATE"]
check(DateTime.strptime(date, "%d-%b-%Y %H:%M:%S %z").to_time.utc == Time.utc(2025, 1, 2, 3, 4, 5), "date: #{date}")
imap.create("Ruby/Archive")
copied = imap.uid_copy(1, "Ruby/Archive")
check(copied.data.code.name == "COPYUID", "COPYUID: #{copied.data.inspect}")
imap.uid_move(2, "Ruby/Archive")
check(imap.uid_search(["ALL"]) == [1, 3, 4], "INBOX after MOVE")
check(imap.status("Ruby/Archive", ["MESSAGES"])["MESSAGES"] == 2, "two in Ruby/Archive")

# Expunge of a \Deleted message, seen by the session as EXPUNGE responses.
imap.uid_store(3, "+FLAGS.SILENT", [:Deleted])
# UID MOVE reported its own EXPUNGE (of number 2), kept by the library until now.
expunged = imap.expunge
check(expunged == [2, 2], "EXPUNGE responses of MOVE and EXPUNGE: #{expunged}")
check(imap.uid_search(["ALL"]) == [1, 4], "INBOX after EXPUNGE")

# IDLE, woken by an APPEND from another session.
other = connect(port, user, password)
heard = Queue.new
thread = Thread.new do
  imap.idle(10) do |resp|
    if resp.is_a?(Net::IMAP::UntaggedResponse) && resp.name == "EXISTS"
      heard << resp.data
      imap.idle_done
    end
  end
end
sleep 0.3
other.append("INBOX", "Subject: while idle\r\n\r\nHi.\r\n")
thread.join
check(!heard.empty? && heard.pop == 3, "IDLE told of the third message")
other.logout
other.disconnect

# Rename, subscriptions, delete; quota, ACL, namespace.
imap.rename("Ruby/Archive", "Ruby/Kept")
names = imap.list("", "Ruby/*").map(&:name)
check(names == ["Ruby/Kept"], "after RENAME: #{names}")
imap.subscribe("Ruby/Kept")
check(imap.lsub("", "Ruby/*").map(&:name) == ["Ruby/Kept"], "LSUB")
imap.unsubscribe("Ruby/Kept")
imap.delete("Ruby/Kept")
check(imap.list("", "Ruby/Kept").nil?, "deleted")
roots = imap.getquotaroot("INBOX")
check(roots.any? { |r| r.is_a?(Net::IMAP::MailboxQuotaRoot) && r.mailbox == "INBOX" }, "QUOTAROOT")
acl = imap.getacl("INBOX")
check(acl.any? { |a| a.user == user && a.rights.include?("a") }, "ACL: #{acl.inspect}")

# A NO that the library raises, after which the session goes on.
begin
  imap.select("No/Such/Folder")
  check(false, "selecting a missing folder must fail")
rescue Net::IMAP::NoResponseError => e
  check(e.message =~ /mailbox/i, "NO: #{e.message}")
end
imap.examine("INBOX")
check(imap.responses["EXISTS"].last == 3, "EXAMINE after the NO")
imap.logout
imap.disconnect
puts "ok"
