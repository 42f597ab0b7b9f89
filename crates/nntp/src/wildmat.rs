//! RFC 3977 4 wildmats: comma-separated patterns (`*`, `?`, `[...]` classes with
//! ranges), each possibly negated with `!`; the last pattern that matches decides.
//! Matching is iterative with one backtrack point per `*` and bounded by the lengths
//! of pattern and name (no exponential case).

/// True when `name` matches the wildmat `wildmat`.
pub(crate) fn matches(wildmat: &str, name: &str) -> bool {
    let mut result = false;
    for pattern in wildmat.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob(pattern.as_bytes(), name.as_bytes()) {
            result = !negated;
        }
    }
    result
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = class(&p[pi..], s[si]) {
                        if hit {
                            pi += next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == b'[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `[...]` at the start of `p`: whether `c` is in the class, and the class's length;
/// `None` when the class is not closed.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = p.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            hit |= (p[i]..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildmats_as_rfc_3977_describes_them() {
        assert!(matches("*", "comp.lang.rust"));
        assert!(matches("comp.*", "comp.lang.rust"));
        assert!(!matches("comp.*", "alt.comp"));
        assert!(matches("comp.*,!comp.lang.*", "comp.os.linux"));
        assert!(!matches("comp.*,!comp.lang.*", "comp.lang.rust"));
        assert!(matches(
            "comp.*,!comp.lang.*,comp.lang.rust",
            "comp.lang.rust"
        ));
        assert!(matches("a?c", "abc"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[^a-c]x", "bx"));
        assert!(matches("*.test", "misc.test"));
        assert!(!matches("", "x"));
    }

    #[test]
    fn many_stars_stay_linear() {
        let pattern = "*a".repeat(200) + "b";
        let name = "a".repeat(400);
        assert!(!matches(&pattern, &name));
    }
}
