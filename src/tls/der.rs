//! Just enough DER to read a certificate's validity period (the calendar arithmetic
//! is `tern_message::date`'s).
//!
//! Nothing in the dependency tree exposes `notAfter`: rustls and webpki check validity
//! only while verifying a chain (and an end-entity certificate does not verify against
//! itself unless self-signed), and rcgen parses certificates only with its optional
//! `x509-parser` feature. The field sits at a fixed place (RFC 5280 §4.1), so walking to
//! it is short:
//!
//! ```text
//! Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, ... }
//! TBSCertificate ::= SEQUENCE {
//!     version [0] EXPLICIT Version OPTIONAL, serialNumber INTEGER,
//!     signature AlgorithmIdentifier, issuer Name,
//!     validity SEQUENCE { notBefore Time, notAfter Time }, ... }
//! Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }
//! ```

use tern_message::date::days_from_civil;

/// A certificate's validity period, in seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`: the last second the certificate is valid.
    pub not_after: i64,
}

/// Reads the validity period of a DER certificate; the error says what is malformed.
pub fn validity(cert: &[u8]) -> Result<Validity, &'static str> {
    let (tag, cert_body, _) = element(cert)?;
    if tag != 0x30 {
        return Err("not a DER certificate (no outer SEQUENCE)");
    }
    let (tag, mut tbs, _) = element(cert_body)?;
    if tag != 0x30 {
        return Err("no tbsCertificate SEQUENCE");
    }
    // The optional explicit version, then serial, signature algorithm and issuer.
    let (tag, _, rest) = element(tbs)?;
    if tag == 0xA0 {
        tbs = rest;
    }
    for expected in [0x02, 0x30, 0x30] {
        let (tag, _, rest) = element(tbs)?;
        if tag != expected {
            return Err("unexpected field before the validity period");
        }
        tbs = rest;
    }
    let (tag, period, _) = element(tbs)?;
    if tag != 0x30 {
        return Err("no validity SEQUENCE");
    }
    let (tag, before, rest) = element(period)?;
    let not_before = time(tag, before)?;
    let (tag, after, _) = element(rest)?;
    let not_after = time(tag, after)?;
    Ok(Validity {
        not_before,
        not_after,
    })
}

/// One DER element at the start of `input`: (tag, contents, what follows).
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    const TRUNCATED: &str = "truncated DER";
    let (&tag, rest) = input.split_first().ok_or(TRUNCATED)?;
    let (&first, rest) = rest.split_first().ok_or(TRUNCATED)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad DER length");
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(TRUNCATED);
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, RFC 5280 §4.1.2.5.1: years 50-99 are 19xx) or a
/// GeneralizedTime (`YYYYMMDDHHMMSSZ`), as Unix seconds.
fn time(tag: u8, text: &[u8]) -> Result<i64, &'static str> {
    const BAD: &str = "bad certificate time";
    let digits = |s: &[u8]| -> Result<i64, &'static str> {
        s.iter().try_fold(0i64, |acc, &b| {
            b.is_ascii_digit()
                .then(|| acc * 10 + i64::from(b - b'0'))
                .ok_or(BAD)
        })
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 13) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return Err(BAD),
    };
    if rest[10] != b'Z' {
        return Err(BAD);
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(BAD);
    }
    // Leap seconds (60) are allowed by the grammar; they count as the next second.
    if second > 60 {
        return Err(BAD);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_message::date::format_utc;

    #[test]
    fn reads_the_validity_rcgen_wrote() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2049, 12, 31);
        params.not_after = rcgen::date_time_ymd(2051, 6, 15);
        let cert = params.self_signed(&key).unwrap();
        let v = validity(cert.der()).unwrap();
        assert_eq!(format_utc(v.not_before), "2049-12-31 00:00:00 UTC");
        assert_eq!(format_utc(v.not_after), "2051-06-15 00:00:00 UTC");
    }

    #[test]
    fn both_time_forms_and_malformed_input() {
        assert_eq!(time(0x17, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(time(0x17, b"500101000000Z"), Ok(-631_152_000));
        assert_eq!(time(0x18, b"20491231235959Z"), Ok(2_524_607_999));
        assert!(time(0x17, b"491231235959+").is_err());
        assert!(time(0x17, b"491331235959Z").is_err());
        assert!(time(0x18, b"491231235959Z").is_err());
        assert!(validity(b"").is_err());
        assert!(validity(&[0x30, 0x82, 0xFF]).is_err());
        assert!(validity(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    }
}
