//! MIME: ENVELOPE, BODYSTRUCTURE, body sections.
