/// A DNS message (RFC 1035 4.1).
public struct DNSMessage: Hashable, Sendable {
    public var id: UInt16
    /// QR: a response.
    public var isResponse: Bool
    public var opcode: UInt8
    /// AA
    public var authoritative: Bool
    /// TC
    public var truncated: Bool
    /// RD
    public var recursionDesired: Bool
    /// RA
    public var recursionAvailable: Bool
    /// AD and CD (RFC 4035), kept as received.
    public var authenticData: Bool
    public var checkingDisabled: Bool
    /// The full RCODE (with the EDNS extended bits, RFC 6891 6.1.3).
    public var rcode: UInt16
    public var questions: [DNSQuestion]
    public var answers: [DNSRecord]
    public var authority: [DNSRecord]
    public var additional: [DNSRecord]
    /// The OPT record, when present (kept out of `additional`).
    public var edns: EDNS?

    public init(
        id: UInt16 = 0, isResponse: Bool = false, opcode: UInt8 = 0, authoritative: Bool = false, truncated: Bool = false,
        recursionDesired: Bool = false, recursionAvailable: Bool = false, authenticData: Bool = false, checkingDisabled: Bool = false,
        rcode: UInt16 = 0, questions: [DNSQuestion] = [], answers: [DNSRecord] = [], authority: [DNSRecord] = [],
        additional: [DNSRecord] = [], edns: EDNS? = nil
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.rcode = rcode
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
    }
}

/// Response codes (RFC 1035 4.1.1, RFC 6891 9).
public enum DNSRCode {
    public static let noError: UInt16 = 0
    public static let formErr: UInt16 = 1
    public static let servFail: UInt16 = 2
    public static let nxDomain: UInt16 = 3
    public static let notImp: UInt16 = 4
    public static let refused: UInt16 = 5
    public static let notAuth: UInt16 = 9
    public static let badVers: UInt16 = 16
}
