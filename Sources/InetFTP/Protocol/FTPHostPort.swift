import InetCore

/// The argument of PORT (RFC 959 4.1.2: `h1,h2,h3,h4,p1,p2`) or EPRT (RFC 2428 2:
/// `|1|132.235.1.2|6275|`, `|2|::1|6275|`), parsed and range-checked before any socket
/// address is made of it. Pure, so it is fuzzed and unit-tested on its own.
struct FTPHostPort: Equatable, Sendable {
    var host: String
    /// 1...65535.
    var port: Int

    enum Failure: Error, Equatable {
        /// Not the command's syntax (501).
        case syntax
        /// An address family other than 1 (IPv4) and 2 (IPv6) (522, RFC 2428 2).
        case family
    }

    /// `h1,h2,h3,h4,p1,p2`, each 0...255 in decimal (spaces around the numbers allowed).
    static func parsePORT(_ argument: String) throws(Failure) -> FTPHostPort {
        let fields = argument.split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == 6 else { throw .syntax }
        var numbers: [Int] = []
        for field in fields {
            let digits = field.trimming(" ")
            guard (1...3).contains(digits.utf8.count), digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let value = Int(digits), value <= 255 else { throw .syntax }
            numbers.append(value)
        }
        let port = numbers[4] << 8 | numbers[5]
        guard port > 0 else { throw .syntax }
        return FTPHostPort(host: numbers[0..<4].map(String.init).joined(separator: "."), port: port)
    }

    /// `<d><af><d><address><d><port><d>` with any delimiter in 33...126.
    static func parseEPRT(_ argument: String) throws(Failure) -> FTPHostPort {
        guard let delimiter = argument.unicodeScalars.first, (33...126).contains(delimiter.value) else { throw .syntax }
        let fields = argument.split(separator: Character(delimiter), omittingEmptySubsequences: false)
        guard fields.count == 5, fields[0].isEmpty, fields[4].isEmpty else { throw .syntax }
        let family = fields[1]
        guard family == "1" || family == "2" else {
            throw family.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) && !family.isEmpty ? .family : .syntax
        }
        let host = String(fields[2])
        guard isAddress(host, ipv6: family == "2") else { throw .syntax }
        let portText = fields[3]
        guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let port = Int(portText), (1...65_535).contains(port) else { throw .syntax }
        return FTPHostPort(host: host, port: port)
    }

    /// A numeric address of the family: dotted IPv4, or IPv6 text (hex digits, colons, and a
    /// trailing dotted quad); the socket layer checks the rest.
    static func isAddress(_ text: String, ipv6: Bool) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 45 else { return false }
        if !ipv6 {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            return parts.count == 4 && parts.allSatisfy { part in
                (1...3).contains(part.utf8.count) && part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) && (Int(part) ?? 256) <= 255
            }
        }
        return text.contains(":") && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46) || byte == 0x3A || byte == 0x2E
        }
    }
}
