/// Why a message, a name or a record could not be read or built. Any of these in a query
/// is answered with FORMERR (RFC 1035 4.1.1), never a crash.
public enum DNSWireError: Error, Equatable, Sendable {
    /// The message ends before a field it announces.
    case truncated
    case labelTooLong
    case nameTooLong
    case emptyLabel
    case badEscape
    /// A compression pointer that does not point strictly backwards (loops, forward jumps).
    case badPointer
    /// Label types 0x40 and 0x80 (RFC 6891 3, RFC 2673, obsolete) are refused.
    case badLabelType
    /// RDATA that does not match its type's layout or its RDLENGTH.
    case badRData
    /// More than one OPT record, or OPT with a non-root owner (RFC 6891 6.1.1).
    case badOPT
    /// Bytes after the last section.
    case trailingBytes
    /// A message that would not fit in 65535 octets.
    case messageTooLarge
}
