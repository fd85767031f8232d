import InetCore
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Quote of the Day (RFC 865): one short message (at most 512 characters, as the RFC
/// recommends) from a built-in list or from `services.qotd.file`, then close.
///
/// The file holds quotes separated by a line with a single `%` (the fortune format) or by
/// blank lines. A quote longer than 512 characters stops startup with its file and line.
public struct QotdService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "qotd", wellKnownPort: 17, transports: [.tcp, .udp], optionKeys: ["file"],
        summary: "sends a short quotation (RFC 865)"
    ) { options throws(ConfigError) in
        guard let path = try options.path("file") else { return QotdService(quotes: QotdService.builtIn) }
        guard let text = readTextFile(path, limit: 1 << 20) else {
            throw options.error("file", "cannot read '\(path)' (missing, unreadable or over 1 MiB)")
        }
        do throws(QotdService.ParseError) {
            return QotdService(quotes: try QotdService.parse(text))
        } catch {
            throw options.error("file", "\(path):\(error.line): \(error.message)")
        }
    }

    /// RFC 865: "the quote of the day should be limited to ASCII printing characters, space,
    /// carriage return, and line feed ... limited to 512 characters".
    public static let maximumLength = 512

    let quotes: [String]

    public init(quotes: [String]) {
        // `parse` refuses a file without quotes; an empty list still serves the built-in ones.
        self.quotes = (quotes.isEmpty ? Self.builtIn : quotes).map(Self.normalized)
    }

    /// Each quote ends in CRLF and uses CRLF between its lines.
    static func normalized(_ quote: String) -> String {
        quote.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
            .joined(separator: "\r\n") + "\r\n"
    }

    func pick() -> String {
        quotes.randomElement() ?? "\r\n"
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let quote = pick()
        try channel.pipeline.syncOperations.addHandler(OneShotHandler { allocator in allocator.buffer(string: quote) })
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        allocator.buffer(string: pick())
    }

    public struct ParseError: Error, Equatable {
        public var line: Int
        public var message: String
    }

    /// Splits a quotes file; each quote (with CRLF line ends) must fit in 512 octets.
    public static func parse(_ text: String) throws(ParseError) -> [String] {
        var quotes: [String] = []
        var current: [Substring] = []
        var startLine = 1
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        func finish(at line: Int) throws(ParseError) {
            while current.last?.trimmingTrailingSpace.isEmpty == true { current.removeLast() }
            defer { current = [] }
            guard !current.isEmpty else { return }
            let quote = current.map { String($0.hasSuffix("\r") ? $0.dropLast() : $0) }.joined(separator: "\n")
            let octets = normalized(quote).utf8.count
            guard octets <= maximumLength else {
                throw ParseError(line: startLine, message: "quote is \(octets) octets; RFC 865 allows at most \(maximumLength)")
            }
            quotes.append(quote)
        }
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingTrailingSpace
            if trimmed == "%" || trimmed.isEmpty {
                try finish(at: index + 1)
                continue
            }
            if current.isEmpty { startLine = index + 1 }
            current.append(line)
        }
        try finish(at: lines.count)
        guard !quotes.isEmpty else { throw ParseError(line: 1, message: "no quotes in the file") }
        return quotes
    }

    /// A few short, well-known sayings about networks and programs.
    public static let builtIn: [String] = [
        "Be conservative in what you do, be liberal in what you accept from others.\n  -- Jon Postel, RFC 793",
        "We reject kings, presidents and voting. We believe in rough consensus and running code.\n  -- David Clark, IETF, 1992",
        "The network is the computer.\n  -- John Gage",
        "A distributed system is one in which the failure of a computer you didn't even know existed can render your own computer unusable.\n  -- Leslie Lamport",
        "Simplicity is prerequisite for reliability.\n  -- Edsger W. Dijkstra",
        "There are only two hard things in Computer Science: cache invalidation and naming things.\n  -- Phil Karlton",
        "It is always something.\n  -- RFC 1925, The Twelve Networking Truths",
        "Good, Fast, Cheap: Pick any two (you can't have all three).\n  -- RFC 1925",
        "With sufficient thrust, pigs fly just fine.\n  -- RFC 1925",
        "No matter how hard you push and no matter what the priority, you can't increase the speed of light.\n  -- RFC 1925",
    ]
}

extension Substring {
    fileprivate var trimmingTrailingSpace: Substring {
        var slice = self
        while let last = slice.last, last == " " || last == "\t" || last == "\r" { slice = slice.dropLast() }
        return slice
    }
}
