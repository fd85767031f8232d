#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetLine
import NIOCore

/// A server reply: its code and the text of each line.
public struct SMTPReply: Sendable, CustomStringConvertible {
    public var code: Int
    public var lines: [String]

    public var description: String { lines.map { "\(code) \($0)" }.joined(separator: "\n") }
}

/// A message to send: the envelope and the content (any line ends; sent with CRLF).
public struct OutgoingMail: Sendable {
    public var from: String
    public var to: [String]
    public var content: [UInt8]

    public init(from: String, to: [String], content: [UInt8]) {
        self.from = from
        self.to = to
        self.content = content
    }

    /// A plain-text message with From, To, Subject, Date and Message-ID headers.
    public static func compose(from: String, to: [String], subject: String?, body: [UInt8], hostname: String = "inetkit.client") -> OutgoingMail {
        var head = "From: <\(from)>\r\nTo: \(to.map { "<\($0)>" }.joined(separator: ", "))\r\n"
        if let subject { head += "Subject: \(subject)\r\n" }
        head += "Date: \(SMTPSession.rfc5322Date())\r\nMessage-ID: <\(SMTPSession.makeTransactionID()).\(getpid())@\(hostname)>\r\n"
        head += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        return OutgoingMail(from: from, to: to, content: Array(head.utf8) + body)
    }
}

/// Sends mail over SMTP (RFC 5321): EHLO (HELO if refused), then for each message MAIL,
/// RCPT per recipient, DATA with the content dot-stuffed and CRLF line ends, and QUIT.
public struct SMTPClient: Sendable {
    public var host: String
    public var port: Int
    public var timeout: Double
    public var heloName: String

    public init(host: String, port: Int, timeout: Double = 30, heloName: String = "inetkit.client") {
        self.host = host
        self.port = port
        self.timeout = timeout
        self.heloName = heloName
    }

    /// Sends the messages one after another on one session. Throws with the server's reply at
    /// the first refusal.
    public func send(_ messages: [OutgoingMail], trace: (@Sendable (String) -> Void)? = nil) async throws {
        try await LineConnection.withConnection(host: host, port: port, timeout: timeout, trace: trace) { connection in
            try await expect(2, try await reply(connection), "greeting")
            try await connection.send("EHLO \(heloName)")
            var extensions = try await reply(connection)
            if extensions.code / 100 != 2 {
                try await connection.send("HELO \(heloName)")
                extensions = try await reply(connection)
                try await expect(2, extensions, "HELO")
            }
            let sizeAdvertised = extensions.lines.dropFirst().contains { $0.uppercased().hasPrefix("SIZE") }
            for message in messages {
                let encoded = Self.encode(message.content)
                try await connection.send("MAIL FROM:<\(message.from)>" + (sizeAdvertised ? " SIZE=\(encoded.readableBytes - 3)" : ""))
                try await expect(2, try await reply(connection), "MAIL FROM")
                for recipient in message.to {
                    try await connection.send("RCPT TO:<\(recipient)>")
                    try await expect(2, try await reply(connection), "RCPT TO <\(recipient)>")
                }
                try await connection.send("DATA")
                try await expect(3, try await reply(connection), "DATA")
                trace?("C: (\(encoded.readableBytes) octets of message)")
                try await connection.sendRaw(encoded)
                try await expect(2, try await reply(connection), "end of data")
            }
            try await connection.send("QUIT")
            _ = try? await reply(connection)
        }
    }

    /// The content with CRLF line ends, dot-stuffed, and the ending `.` line.
    static func encode(_ content: [UInt8]) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(content.count + content.count / 32 + 8)
        var atLineStart = true
        var index = 0
        while index < content.count {
            let byte = content[index]
            if atLineStart, byte == UInt8(ascii: ".") { out.writeInteger(UInt8(ascii: ".")) }
            atLineStart = false
            if byte == 0x0D, index + 1 < content.count, content[index + 1] == 0x0A {
                index += 1
                continue
            }
            if byte == 0x0A {
                out.writeStaticString("\r\n")
                atLineStart = true
            } else {
                out.writeInteger(byte)
            }
            index += 1
        }
        if !atLineStart { out.writeStaticString("\r\n") }
        out.writeStaticString(".\r\n")
        return out
    }

    private func reply(_ connection: LineConnection) async throws -> SMTPReply {
        var lines: [String] = []
        var code = 0
        while true {
            let line = try await connection.readLine()
            guard line.utf8.count >= 3, let value = Int(line.prefix(3)) else { throw MailClientError("not an SMTP reply: \(line)") }
            code = value
            lines.append(String(line.dropFirst(4)))
            if line.utf8.count == 3 || line.dropFirst(3).first == " " { return SMTPReply(code: code, lines: lines) }
            guard lines.count < 1000 else { throw MailClientError("the server's reply does not end") }
        }
    }

    private func expect(_ kind: Int, _ reply: SMTPReply, _ step: String) async throws {
        guard reply.code / 100 == kind else { throw MailClientError("\(step) refused: \(reply)") }
    }
}
