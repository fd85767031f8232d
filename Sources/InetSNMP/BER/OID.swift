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

    /// `1.3.6.1.2.1.1.3.0`, written digit by digit into one buffer (an event lists the OIDs
    /// of every request).
    public var description: String {
        var text: [UInt8] = []
        text.reserveCapacity(components.count * 4)
        for (index, component) in components.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ".")) }
            // Digits from the right, then turned around in place.
            let start = text.count
            var rest = component
            repeat {
                text.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10))
                rest /= 10
            } while rest > 0
            text[start...].reverse()
        }
        return String(decoding: text, as: UTF8.self)
    }

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

    /// The BER content octets (X.690 8.19). The first two arcs share one sub-identifier
    /// (`first * 40 + second`), computed in 64 bits: `2.4294967295` is a valid OID whose first
    /// sub-identifier does not fit in 32.
    func encodedContent() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(components.count + 4)
        func append(_ value: UInt64) {
            var stack: [UInt8] = [UInt8(truncatingIfNeeded: value & 0x7F)]
            var rest = value >> 7
            while rest > 0 {
                stack.append(UInt8(truncatingIfNeeded: rest & 0x7F) | 0x80)
                rest >>= 7
            }
            out.append(contentsOf: stack.reversed())
        }
        switch components.count {
        case 0:
            break
        case 1:
            append(UInt64(components[0]) * 40)
        default:
            append(UInt64(components[0]) * 40 + UInt64(components[1]))
            for value in components.dropFirst(2) { append(UInt64(value)) }
        }
        return out
    }

    /// Decodes BER content octets; nil for truncated or oversized sub-identifiers. The first
    /// sub-identifier holds two arcs and may reach `2 * 40 + UInt32.max`; every later one must
    /// fit in 32 bits (RFC 2578 7.1.3).
    init?(encodedContent bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return nil }
        var values: [UInt32] = []
        var current: UInt64 = 0
        var inProgress = false
        for byte in bytes {
            if !inProgress, byte == 0x80 { return nil }  // X.690 8.19.2: no leading 0x80
            current = (current << 7) | UInt64(byte & 0x7F)
            let limit = values.isEmpty ? UInt64(UInt32.max) + 80 : UInt64(UInt32.max)
            guard current <= limit else { return nil }
            inProgress = byte & 0x80 != 0
            if !inProgress {
                if values.isEmpty {
                    let first = min(current / 40, 2)
                    guard let second = UInt32(exactly: current - first * 40), let arc = UInt32(exactly: first) else { return nil }
                    values = [arc, second]
                } else {
                    guard let value = UInt32(exactly: current) else { return nil }
                    values.append(value)
                }
                current = 0
            }
            guard values.count <= Self.maximumLength else { return nil }
        }
        guard !inProgress else { return nil }
        components = values
    }
}
