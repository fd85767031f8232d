/// An OBJECT IDENTIFIER: up to 128 sub-identifiers of 32 bits (RFC 3416 / RFC 2578 7.1.3),
/// ordered lexicographically as SNMP walks them.
public struct OID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var components: [UInt32]

    public static let maximumLength = 128

    public init(_ components: [UInt32]) {
        self.components = components
    }

    public init(arrayLiteral elements: UInt32...) {
        components = elements
    }

    /// Parses `1.3.6.1.2.1.1.3.0` (a leading dot is allowed).
    public init?(_ text: String) {
        var body = Substring(text)
        if body.hasPrefix(".") { body = body.dropFirst() }
        guard !body.isEmpty else { return nil }
        var parts: [UInt32] = []
        for part in body.split(separator: ".", omittingEmptySubsequences: false) {
            guard let value = UInt32(part) else { return nil }
            parts.append(value)
        }
        guard parts.count <= Self.maximumLength else { return nil }
        components = parts
    }

    public var description: String { components.map(String.init).joined(separator: ".") }

    public static func < (lhs: OID, rhs: OID) -> Bool {
        for (a, b) in zip(lhs.components, rhs.components) where a != b { return a < b }
        return lhs.components.count < rhs.components.count
    }

    /// Whether `self` is `prefix` or lies under it.
    public func hasPrefix(_ prefix: OID) -> Bool {
        components.count >= prefix.components.count && components.starts(with: prefix.components)
    }

    public func appending(_ more: UInt32...) -> OID {
        OID(components + more)
    }

    public func appending(_ more: [UInt32]) -> OID {
        OID(components + more)
    }

    /// The BER content octets (X.690 8.19).
    func encodedContent() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(components.count + 4)
        var values = components
        if values.count >= 2 {
            values = [values[0] * 40 + values[1]] + values.dropFirst(2)
        } else if values.count == 1 {
            values = [values[0] * 40]
        }
        for value in values {
            var stack: [UInt8] = [UInt8(value & 0x7F)]
            var rest = value >> 7
            while rest > 0 {
                stack.append(UInt8(rest & 0x7F) | 0x80)
                rest >>= 7
            }
            out.append(contentsOf: stack.reversed())
        }
        return out
    }

    /// Decodes BER content octets; nil for truncated or oversized sub-identifiers.
    init?(encodedContent bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return nil }
        var values: [UInt32] = []
        var current: UInt64 = 0
        var inProgress = false
        for byte in bytes {
            if !inProgress, byte == 0x80 { return nil }  // X.690 8.19.2: no leading 0x80
            current = (current << 7) | UInt64(byte & 0x7F)
            guard current <= UInt64(UInt32.max) + 80 else { return nil }
            inProgress = byte & 0x80 != 0
            if !inProgress {
                if values.isEmpty {
                    let first = min(current / 40, 2)
                    let second = current - first * 40
                    guard second <= UInt64(UInt32.max) else { return nil }
                    values = [UInt32(first), UInt32(second)]
                } else {
                    values.append(UInt32(current))
                }
                current = 0
            }
            guard values.count <= Self.maximumLength else { return nil }
        }
        guard !inProgress else { return nil }
        components = values
    }
}
