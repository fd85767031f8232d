/// A domain name as labels of raw octets, letter case kept as received (RFC 1035 3.1;
/// comparisons ignore ASCII case, RFC 4343).
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// Labels from the leftmost; the root is the empty list.
    public private(set) var labels: [[UInt8]]

    /// RFC 1035 2.3.4: a label is at most 63 octets.
    public static let maximumLabelLength = 63
    /// RFC 1035 2.3.4: a name is at most 255 octets on the wire (length octets included).
    public static let maximumWireLength = 255

    public static let root = DNSName(validatedLabels: [])

    init(validatedLabels: [[UInt8]]) {
        labels = validatedLabels
    }

    public init(labels: [[UInt8]]) throws(DNSWireError) {
        for label in labels {
            guard !label.isEmpty else { throw .emptyLabel }
            guard label.count <= Self.maximumLabelLength else { throw .labelTooLong }
        }
        guard labels.reduce(1, { $0 + $1.count + 1 }) <= Self.maximumWireLength else { throw .nameTooLong }
        self.labels = labels
    }

    /// Parses presentation form (`www.example.test.`; a trailing dot is optional here);
    /// `\.` and `\DDD` escapes are honoured.
    public init(_ text: String) throws(DNSWireError) {
        if text == "." || text.isEmpty {
            self = .root
            return
        }
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            switch byte {
            case UInt8(ascii: "."):
                guard !current.isEmpty else { throw .emptyLabel }
                labels.append(current)
                current = []
            case UInt8(ascii: "\\"):
                guard let next = bytes.popFirst() else { throw .badEscape }
                if (48...57).contains(next) {
                    guard bytes.count >= 2, let d2 = bytes.popFirst(), let d3 = bytes.popFirst(),
                          (48...57).contains(d2), (48...57).contains(d3) else { throw .badEscape }
                    let value = Int(next - 48) * 100 + Int(d2 - 48) * 10 + Int(d3 - 48)
                    guard value <= 255 else { throw .badEscape }
                    current.append(UInt8(value))
                } else {
                    current.append(next)
                }
            default:
                current.append(byte)
            }
        }
        if !current.isEmpty { labels.append(current) }
        try self.init(labels: labels)
    }

    /// Octets on the wire, uncompressed.
    public var wireLength: Int { labels.reduce(1) { $0 + $1.count + 1 } }

    /// Presentation form with a trailing dot; dots, backslashes and non-printable octets escaped.
    public var description: String {
        guard !labels.isEmpty else { return "." }
        var text = ""
        for label in labels {
            for byte in label {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: ";"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    text += "\\" + String(UnicodeScalar(byte))
                case 33...126:
                    text.unicodeScalars.append(UnicodeScalar(byte))
                default:
                    let digits = String(byte)
                    text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
                }
            }
            text += "."
        }
        return text
    }

    /// The name with ASCII letters lowered: the key for lookups and compression.
    public var lowercased: DNSName {
        DNSName(validatedLabels: labels.map { $0.map { (65...90).contains($0) ? $0 | 0x20 : $0 } })
    }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        guard lhs.labels.count == rhs.labels.count else { return false }
        for (a, b) in zip(lhs.labels, rhs.labels) {
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where lowercase(x) != lowercase(y) { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(labels.count)
        for label in labels {
            hasher.combine(label.count)
            for byte in label { hasher.combine(Self.lowercase(byte)) }
        }
    }

    @inline(__always)
    static func lowercase(_ byte: UInt8) -> UInt8 { (65...90).contains(byte) ? byte | 0x20 : byte }

    /// True when `self` is `other` or below it.
    public func isSubdomain(of other: DNSName) -> Bool {
        guard labels.count >= other.labels.count else { return false }
        return DNSName(validatedLabels: Array(labels.suffix(other.labels.count))) == other
    }

    /// The name without its leftmost label (nil for the root).
    public var parent: DNSName? {
        labels.isEmpty ? nil : DNSName(validatedLabels: Array(labels.dropFirst()))
    }

    /// `label.self`, checked.
    public func prepending(_ label: [UInt8]) throws(DNSWireError) -> DNSName {
        try DNSName(labels: [label] + labels)
    }
}
