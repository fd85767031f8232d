import InetCore

/// The simple services, as the client names them.
public enum SimpleKind: String, Sendable, CaseIterable {
    case echo, discard, daytime, qotd, chargen, time

    /// The port of the service's RFC.
    public var wellKnownPort: Int {
        switch self {
        case .echo: 7
        case .discard: 9
        case .daytime: 13
        case .qotd: 17
        case .chargen: 19
        case .time: 37
        }
    }
}

/// Where a client sends requests: `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
public struct Target: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses a TARGET argument; `defaultPort` applies when none is given.
    public static func parse(_ text: String, defaultPort: Int) throws(ParseError) -> Target {
        func port(_ digits: Substring) throws(ParseError) -> Int {
            guard let value = Int(digits), (1...65_535).contains(value) else {
                throw ParseError(description: "'\(text)': port must be a number from 1 to 65535")
            }
            return value
        }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ParseError(description: "'\(text)': missing ']'") }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return Target(host: host, port: defaultPort) }
            guard rest.hasPrefix(":") else { throw ParseError(description: "'\(text)': expected ':' after ']'") }
            return Target(host: host, port: try port(rest.dropFirst()))
        }
        let colons = text.filter { $0 == ":" }.count
        if colons > 1 { return Target(host: text, port: defaultPort) }
        if colons == 1, let colon = text.firstIndex(of: ":") {
            let host = String(text[..<colon])
            guard !host.isEmpty else { throw ParseError(description: "'\(text)': missing host") }
            return Target(host: host, port: try port(text[text.index(after: colon)...]))
        }
        guard !text.isEmpty else { throw ParseError(description: "empty target") }
        return Target(host: text, port: defaultPort)
    }
}
