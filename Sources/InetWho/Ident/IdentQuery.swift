/// An ident query (RFC 1413 §6): `<port-on-server> , <port-on-client>`, where the server is the
/// host answering (this one) and the client the host asking.
public struct IdentQuery: Equatable, Sendable {
    public var serverPort: Int
    public var clientPort: Int

    public init(serverPort: Int, clientPort: Int) {
        self.serverPort = serverPort
        self.clientPort = clientPort
    }

    public enum ParseError: Error, Equatable {
        /// Two numbers, but one is not a port (0, or over 65535): `INVALID-PORT`.
        case invalidPort(String, String)
        /// Not a query at all: `UNKNOWN-ERROR`.
        case malformed
    }

    /// Parses a query line without its CRLF (spaces and tabs around the numbers allowed).
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Result<IdentQuery, ParseError> {
        let parts = bytes.split(separator: UInt8(ascii: ","), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .failure(.malformed) }
        func digits(_ part: Bytes.SubSequence) -> String? {
            let trimmed = part.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }.reversed()
            guard !trimmed.isEmpty, trimmed.count <= 10, trimmed.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return String(decoding: trimmed, as: UTF8.self)
        }
        guard let server = digits(parts[0]), let client = digits(parts[1]) else { return .failure(.malformed) }
        guard let serverPort = Int(server), (1...65_535).contains(serverPort),
              let clientPort = Int(client), (1...65_535).contains(clientPort) else {
            return .failure(.invalidPort(String(server.prefix(5)), String(client.prefix(5))))
        }
        return .success(IdentQuery(serverPort: serverPort, clientPort: clientPort))
    }

    /// The reply line (with CRLF).
    public static func reply(_ query: IdentQuery, _ answer: Answer) -> String {
        reply(ports: "\(query.serverPort) , \(query.clientPort)", answer)
    }

    public static func reply(ports: String, _ answer: Answer) -> String {
        switch answer {
        case .user(let name, let system): "\(ports) : USERID : \(system) : \(name)\r\n"
        case .error(let error): "\(ports) : ERROR : \(error.rawValue)\r\n"
        }
    }

    public enum Answer: Equatable, Sendable {
        case user(String, system: String)
        case error(IdentError)
    }
}

/// The error tokens of RFC 1413 §6.
public enum IdentError: String, Sendable {
    case invalidPort = "INVALID-PORT"
    case noUser = "NO-USER"
    case hiddenUser = "HIDDEN-USER"
    case unknownError = "UNKNOWN-ERROR"
}
