/// RR types InetDNS knows by name (RFC 1035, 3596, 2782, 8659, 6891, 5936).
public struct DNSType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let a = DNSType(rawValue: 1)
    public static let ns = DNSType(rawValue: 2)
    public static let cname = DNSType(rawValue: 5)
    public static let soa = DNSType(rawValue: 6)
    public static let ptr = DNSType(rawValue: 12)
    public static let mx = DNSType(rawValue: 15)
    public static let txt = DNSType(rawValue: 16)
    public static let aaaa = DNSType(rawValue: 28)
    public static let srv = DNSType(rawValue: 33)
    public static let opt = DNSType(rawValue: 41)
    public static let caa = DNSType(rawValue: 257)
    public static let axfr = DNSType(rawValue: 252)
    public static let any = DNSType(rawValue: 255)

    /// The types `knownName` names.
    static let known: [UInt16] = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 252, 255, 257]

    /// `A`, `MX`…, or `TYPE65280` for the others (RFC 3597 5).
    public var description: String { knownName ?? "TYPE\(rawValue)" }

    /// The name of a type this module knows, nil for the others. A switch of literals (no
    /// dictionary, no hashing, no reference counting): every logged query names its type.
    public var knownName: String? {
        staticName.map { String(describing: $0) }
    }

    /// The same as a literal (what an event copies without a String on the way).
    public var staticName: StaticString? {
        switch rawValue {
        case 1: "A"
        case 2: "NS"
        case 5: "CNAME"
        case 6: "SOA"
        case 12: "PTR"
        case 15: "MX"
        case 16: "TXT"
        case 28: "AAAA"
        case 33: "SRV"
        case 41: "OPT"
        case 252: "AXFR"
        case 255: "ANY"
        case 257: "CAA"
        default: nil
        }
    }

    public init?(name: String) {
        let upper = name.uppercased()
        if let known = Self.known.first(where: { DNSType(rawValue: $0).knownName == upper }) {
            rawValue = known
        } else if upper.hasPrefix("TYPE"), let value = UInt16(upper.dropFirst(4)) {
            rawValue = value
        } else {
            return nil
        }
    }
}

/// RR classes (IN, and the ones a query may carry).
public struct DNSClass: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let internet = DNSClass(rawValue: 1)
    public static let chaos = DNSClass(rawValue: 3)
    public static let any = DNSClass(rawValue: 255)
}

/// The data of a record, by type; `unknown` keeps any other type's octets (RFC 3597).
public enum RData: Hashable, Sendable {
    case a([UInt8])
    case aaaa([UInt8])
    case ns(DNSName)
    case cname(DNSName)
    case ptr(DNSName)
    case soa(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32)
    case mx(preference: UInt16, exchange: DNSName)
    case txt([[UInt8]])
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    case caa(flags: UInt8, tag: [UInt8], value: [UInt8])
    case unknown(type: DNSType, data: [UInt8])

    public var type: DNSType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .ns: .ns
        case .cname: .cname
        case .ptr: .ptr
        case .soa: .soa
        case .mx: .mx
        case .txt: .txt
        case .srv: .srv
        case .caa: .caa
        case .unknown(let type, _): type
        }
    }

    /// A name this record points at whose address belongs in the additional section
    /// (NS, MX and SRV targets, RFC 1035 3.3, RFC 2782).
    public var additionalTarget: DNSName? {
        switch self {
        case .ns(let name): name
        case .mx(_, let name): name
        case .srv(_, _, _, let name): name
        default: nil
        }
    }
}

/// A resource record.
public struct DNSRecord: Hashable, Sendable {
    public var name: DNSName
    public var rclass: DNSClass
    public var ttl: UInt32
    public var data: RData

    public init(name: DNSName, rclass: DNSClass = .internet, ttl: UInt32, data: RData) {
        self.name = name
        self.rclass = rclass
        self.ttl = ttl
        self.data = data
    }

    public var type: DNSType { data.type }
}

/// A question (RFC 1035 4.1.2).
public struct DNSQuestion: Hashable, Sendable {
    public var name: DNSName
    public var type: DNSType
    public var qclass: DNSClass

    public init(name: DNSName, type: DNSType, qclass: DNSClass = .internet) {
        self.name = name
        self.type = type
        self.qclass = qclass
    }
}

/// EDNS(0) as carried by the OPT pseudo-record (RFC 6891 6.1.2).
public struct EDNS: Hashable, Sendable {
    /// The requestor's UDP payload size (values below 512 are treated as 512).
    public var udpPayloadSize: UInt16
    /// The upper 8 bits of the 12-bit RCODE.
    public var extendedRCode: UInt8
    public var version: UInt8
    /// DNSSEC OK.
    public var dnssecOK: Bool
    /// Options as (code, data), kept as received.
    public var options: [EDNSOption]

    public init(udpPayloadSize: UInt16 = 1232, extendedRCode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false, options: [EDNSOption] = []) {
        self.udpPayloadSize = udpPayloadSize
        self.extendedRCode = extendedRCode
        self.version = version
        self.dnssecOK = dnssecOK
        self.options = options
    }
}

public struct EDNSOption: Hashable, Sendable {
    public var code: UInt16
    public var data: [UInt8]

    public init(code: UInt16, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}
