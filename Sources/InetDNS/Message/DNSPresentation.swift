/// Master-file (presentation) text for records, as dig prints them and zone files hold them.
extension DNSRecord {
    public var presentation: String {
        "\(name)\t\(ttl)\t\(rclass == .internet ? "IN" : "CLASS\(rclass.rawValue)")\t\(type)\t\(data.presentation)"
    }
}

extension RData {
    public var presentation: String {
        switch self {
        case .a(let bytes): return bytes.map(String.init).joined(separator: ".")
        case .aaaa(let bytes): return Self.ipv6(bytes)
        case .ns(let name), .cname(let name), .ptr(let name): return name.description
        case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
            return "\(mname) \(rname) \(serial) \(refresh) \(retry) \(expire) \(minimum)"
        case .mx(let preference, let exchange): return "\(preference) \(exchange)"
        case .txt(let strings): return strings.map(Self.quoted).joined(separator: " ")
        case .srv(let priority, let weight, let port, let target): return "\(priority) \(weight) \(port) \(target)"
        case .caa(let flags, let tag, let value): return "\(flags) \(String(decoding: tag, as: UTF8.self)) \(Self.quoted(value))"
        case .unknown(_, let data):
            // RFC 3597 5.
            return "\\# \(data.count)" + (data.isEmpty ? "" : " " + data.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined())
        }
    }

    static func quoted(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 32...126: text.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let digits = String(byte)
                text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
            }
        }
        return text + "\""
    }

    static func ipv6(_ bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return "" }
        let groups = stride(from: 0, to: 16, by: 2).map { Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]) }
        // The longest run of zero groups (length ≥ 2) becomes "::" (RFC 5952).
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > best.length && end - index >= 2 { best = (index, end - index) }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}
