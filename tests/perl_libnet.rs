//! POP3 and NNTP through the real `tern serve` binary, driven by Perl's libnet
//! (Net::POP3 and Net::NNTP, in every Perl: what mail and news scripts, gateways and
//! monitoring checks use), both over STARTTLS. The checks are in
//! `tests/perl/pop3_net_pop3.pl` (CAPA, login, STAT, LIST, UIDL, RETR against the
//! sizes listed, TOP, DELE, RSET, QUIT and the maildrop afterwards) and
//! `tests/perl/nntp_net_nntp.pl` (AUTHINFO, LIST and LIST NEWSGROUPS, POST and a
//! follow-up, GROUP, ARTICLE by Message-ID, BODY and HEAD by number, XOVER, NEWNEWS,
//! a 430). Perl with IO::Socket::SSL is required (`.ci/run` installs it).

mod common;

use common::maildir::*;
use common::*;

/// What `.ci/run` installs for these scripts.
const NEEDS: &str = "Perl, with IO::Socket::SSL";

#[test]
fn net_pop3_reads_and_deletes_over_stls() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TernServer::start_with(tmp.path(), "", "pop3 = \"127.0.0.1:0\"");
    add_user(&server, "alice");
    deliver_three(&server, "pop");
    let port = server.pop3.expect("pop3 listener").port();
    scripted_session("perl", "perl/pop3_net_pop3.pl", &[], port, NEEDS);
}

#[test]
fn net_nntp_posts_and_reads_over_starttls() {
    let tmp = tempfile::tempdir().unwrap();
    let server = news_server(tmp.path());
    let port = server.nntp.expect("nntp listener").port();
    scripted_session("perl", "perl/nntp_net_nntp.pl", &[], port, NEEDS);
}
