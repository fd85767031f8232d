#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import InetCore
import InetLine
import NIOCore
import NIOPosix
import Synchronization

/// One SMTP connection's state machine (RFC 5321 4.1.4 command order), on its event loop.
final class SMTPSession: LineSession {
    enum Phase: Equatable {
        /// No HELO/EHLO yet (also after STARTTLS).
        case fresh
        /// Greeted; no transaction.
        case ready
        /// MAIL accepted; collecting recipients.
        case transaction
        /// Reading the message after 354.
        case data
    }

    /// Why a message read to its end is refused.
    enum DataProblem {
        case tooBig, lineTooLong, nul
        /// Writing the spilled part failed: the rest is read and the message refused with 451.
        case storage
    }

    let settings: SMTPSettings
    let store: Maildir
    let tlsAvailable: Bool
    let counter: AddressConnectionCounter
    let logger: Logger

    private(set) var phase = Phase.fresh
    private var heloName = ""
    private var extended = false
    private var tlsActive = false
    private var sender: MailAddress?
    private var senderText = ""
    private var utf8Transaction = false
    private(set) var recipients: [MailAddress] = []
    private var recipientAttempted = false
    private var errors: LineErrorBudget
    private var eventLoop: (any EventLoop)?
    private var peerAddress = "unknown"
    private var countedAddress: String?

    // The message being read.
    private var delivery: MaildirDelivery?
    private var chunk = ByteBuffer()
    private var messageBytes = 0
    private var problem: DataProblem?
    private var previousLineEndedCRLF = true
    private var transactionID = ""

    /// Spill to the tmp/ file once this much of a message is buffered.
    static let spillThreshold = 256 * 1024
    private static let serial = Atomic<Int>(0)

    init(settings: SMTPSettings, store: Maildir, tlsAvailable: Bool, counter: AddressConnectionCounter,
         logger: Logger = Logger(label: "inetkit.smtp")) {
        self.logger = logger
        self.settings = settings
        errors = LineErrorBudget(limit: settings.maxErrors, closing: "421 4.7.0 \(settings.hostname) Error: too many errors")
        self.store = store
        self.tlsAvailable = tlsAvailable
        self.counter = counter
    }

    var maximumLineLength: Int { SMTPSettings.maximumLineLength }

    var timeout: (seconds: Double, reply: String) {
        (phase == .data ? settings.dataTimeout : settings.commandTimeout,
         "421 4.4.2 \(settings.hostname) Error: timeout exceeded\r\n")
    }

    func start(context: LineSessionContext) -> [LineAction] {
        eventLoop = context.eventLoop
        peerAddress = context.peer?.ipAddress ?? "unknown"
        guard counter.open(peerAddress, limit: settings.maxConnectionsPerAddress) else {
            return [.reply("421 4.7.0 \(settings.hostname) Error: too many connections from \(peerAddress)\r\n"), .close]
        }
        countedAddress = peerAddress
        return [.reply("220 \(settings.hostname) ESMTP InetKit\r\n")]
    }

    func closed() {
        if let countedAddress { counter.close(countedAddress) }
        countedAddress = nil
        abandonMessage()
    }

    // MARK: - Commands

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction] {
        if phase == .data { return dataLine(line, ending: ending) }
        guard !line.readableBytesView.contains(0) else { return fail("500 5.5.2 Error: NUL character in command") }
        guard let text = String(validating: line.readableBytesView, as: UTF8.self) else {
            return fail("500 5.5.2 Error: bad UTF-8 syntax")
        }
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let argument = text[verbEnd...].drop { $0 == " " }
        switch verb {
        case "EHLO", "HELO": return hello(argument, extended: verb == "EHLO")
        case "MAIL": return mail(argument)
        case "RCPT": return recipient(argument)
        case "DATA":
            return data(argument)
        case "RSET":
            guard argument.isEmpty else { return fail("501 5.5.4 Syntax: RSET") }
            resetTransaction()
            return ok("250 2.0.0 Ok")
        case "NOOP":
            return ok("250 2.0.0 Ok")
        case "QUIT":
            return [.reply("221 2.0.0 Bye\r\n"), .close]
        case "VRFY":
            guard !argument.isEmpty else { return fail("501 5.5.4 Syntax: VRFY address") }
            return ok("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery")
        case "HELP":
            return ok("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP" + (tlsAvailable ? " STARTTLS" : ""))
        case "STARTTLS":
            return startTLS(argument)
        case "EXPN", "AUTH", "BDAT", "ETRN", "TURN", "ATRN", "SEND", "SOML", "SAML":
            return fail("502 5.5.1 Error: command not implemented")
        default:
            return fail("500 5.5.2 Error: command not recognized")
        }
    }

    func lineTooLong() -> [LineAction] {
        if phase == .data {
            problem = problem ?? .lineTooLong
            previousLineEndedCRLF = true
            return []
        }
        return fail("500 5.5.2 Error: line too long")
    }

    private func ok(_ text: String) -> [LineAction] {
        [.reply(text + "\r\n")]
    }

    /// A reply that counts as the client's error; past `max_errors` the session ends with 421.
    private func fail(_ text: String) -> [LineAction] {
        errors.fail(text)
    }

    private func hello(_ argument: Substring, extended: Bool) -> [LineAction] {
        let name = argument.split(separator: " ").first.map(String.init) ?? ""
        guard !name.isEmpty else { return fail("501 5.5.4 Syntax: \(extended ? "EHLO" : "HELO") hostname") }
        // The name goes into the Received: header: no control characters (a lone CR would
        // start a header line of the client's choosing), and no more than a domain's length.
        guard name.utf8.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return fail("501 5.5.2 Error: invalid \(extended ? "EHLO" : "HELO") name")
        }
        heloName = name
        self.extended = extended
        resetTransaction()
        phase = .ready
        guard extended else { return ok("250 \(settings.hostname)") }
        var lines = [
            settings.hostname, "PIPELINING", "SIZE \(settings.maxMessageBytes)", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
        ]
        if tlsAvailable, !tlsActive { lines.append("STARTTLS") }
        lines.append("HELP")
        var text = ""
        for (index, line) in lines.enumerated() {
            text += "250\(index == lines.count - 1 ? " " : "-")\(line)\r\n"
        }
        return [.reply(text)]
    }

    private func mail(_ argument: Substring) -> [LineAction] {
        guard phase != .fresh else { return fail("503 5.5.1 Error: send HELO/EHLO first") }
        guard phase == .ready else { return fail("503 5.5.1 Error: nested MAIL command") }
        guard argument.prefix(5).uppercased() == "FROM:", let path = SMTPPathArgument.parse(argument.dropFirst(5)) else {
            return fail("501 5.5.4 Syntax: MAIL FROM:<address>")
        }
        var utf8 = false
        for (key, value) in path.parameters {
            guard extended else { return fail("555 5.5.4 Unsupported option: \(key)") }
            switch key {
            case "SIZE":
                guard let value, let size = Int(value), size >= 0 else { return fail("501 5.5.4 Bad SIZE parameter") }
                if size > settings.maxMessageBytes { return fail("552 5.3.4 Message size exceeds fixed limit") }
            case "BODY":
                guard let value, ["7BIT", "8BITMIME"].contains(value.uppercased()) else { return fail("501 5.5.4 Bad BODY parameter") }
            case "SMTPUTF8":
                guard value == nil else { return fail("501 5.5.4 Bad SMTPUTF8 parameter") }
                utf8 = true
            default:
                return fail("555 5.5.4 Unsupported option: \(key)")
            }
        }
        if path.path.isEmpty {
            sender = nil
        } else {
            guard let address = MailAddress.parse(path.path, utf8: utf8) else {
                if !utf8, path.path.unicodeScalars.contains(where: { $0.value >= 0x80 }) {
                    return fail("553 5.6.7 Error: non-ASCII address needs SMTPUTF8")
                }
                return fail("501 5.1.7 Bad sender address syntax")
            }
            sender = address
        }
        senderText = String(path.path)
        utf8Transaction = utf8
        phase = .transaction
        return ok("250 2.1.0 Ok")
    }

    private func recipient(_ argument: Substring) -> [LineAction] {
        guard phase == .transaction else {
            return fail(phase == .fresh ? "503 5.5.1 Error: send HELO/EHLO first" : "503 5.5.1 Error: need MAIL command")
        }
        guard argument.prefix(3).uppercased() == "TO:", let path = SMTPPathArgument.parse(argument.dropFirst(3)), !path.path.isEmpty else {
            return fail("501 5.5.4 Syntax: RCPT TO:<address>")
        }
        recipientAttempted = true
        if let key = path.parameters.first?.key { return fail("555 5.5.4 Unsupported option: \(key)") }
        let address: MailAddress
        if path.path.lowercased() == "postmaster" {
            // RFC 5321 4.5.1: "postmaster" without a domain is always accepted.
            address = MailAddress(localPart: "postmaster", domain: settings.domains[0])
        } else {
            guard let parsed = MailAddress.parse(path.path, utf8: utf8Transaction) else {
                if !utf8Transaction, path.path.unicodeScalars.contains(where: { $0.value >= 0x80 }) {
                    return fail("553 5.6.7 Error: non-ASCII address needs SMTPUTF8")
                }
                return fail("501 5.1.3 Bad recipient address syntax")
            }
            address = parsed
        }
        guard settings.domains.contains(address.domain) else {
            return fail("550 5.7.1 <\(address)>: Relay access denied")
        }
        guard address.isStorable else { return fail("553 5.1.3 <\(address)>: Recipient address not accepted here") }
        if let mailboxes = settings.mailboxes, !mailboxes.contains(address.key), address.localPart.lowercased() != "postmaster" {
            return fail("550 5.1.1 <\(address)>: Recipient address rejected: User unknown")
        }
        if recipients.contains(where: { $0.key == address.key }) { return ok("250 2.1.5 Ok") }
        guard recipients.count < settings.maxRecipients else { return fail("452 4.5.3 Error: too many recipients") }
        recipients.append(address)
        return ok("250 2.1.5 Ok")
    }

    private func startTLS(_ argument: Substring) -> [LineAction] {
        guard tlsAvailable else { return fail("502 5.5.1 Error: command not implemented") }
        guard !tlsActive else { return fail("554 5.5.1 Error: TLS already active") }
        guard argument.isEmpty else { return fail("501 5.5.4 Syntax: STARTTLS") }
        // RFC 3207 4.2: everything learnt before TLS is forgotten.
        tlsActive = true
        resetTransaction()
        heloName = ""
        extended = false
        phase = .fresh
        return [.reply("220 2.0.0 Ready to start TLS\r\n"), .startTLS]
    }

    private func resetTransaction() {
        abandonMessage()
        sender = nil
        senderText = ""
        utf8Transaction = false
        recipients = []
        recipientAttempted = false
        if phase != .fresh { phase = .ready }
    }

    // MARK: - DATA

    private func data(_ argument: Substring) -> [LineAction] {
        guard argument.isEmpty else { return fail("501 5.5.4 Syntax: DATA") }
        guard phase == .transaction else {
            return fail(phase == .fresh ? "503 5.5.1 Error: send HELO/EHLO first" : "503 5.5.1 Error: need MAIL command")
        }
        guard !recipients.isEmpty else {
            return fail(recipientAttempted ? "554 5.5.1 Error: no valid recipients" : "503 5.5.1 Error: need RCPT command")
        }
        phase = .data
        messageBytes = 0
        problem = nil
        previousLineEndedCRLF = true
        transactionID = Self.makeTransactionID()
        chunk = ByteBuffer()
        chunk.reserveCapacity(16 * 1024)
        chunk.writeString(traceHeaders())
        return [.reply("354 End data with <CR><LF>.<CR><LF>\r\n")]
    }

    private func dataLine(_ line: ByteBuffer, ending: LineEnding) -> [LineAction] {
        var line = line
        if line.readableBytes == 1, line.getInteger(at: line.readerIndex, as: UInt8.self) == UInt8(ascii: ".") {
            // Only <CRLF>.<CRLF> ends the message; a dot line with a bare LF is content (as
            // Postfix's smtpd_forbid_bare_newline=normalize does; no SMTP smuggling).
            if ending == .crlf, previousLineEndedCRLF { return endOfData() }
        }
        previousLineEndedCRLF = ending == .crlf
        if line.getInteger(at: line.readerIndex, as: UInt8.self) == UInt8(ascii: ".") {
            line.moveReaderIndex(forwardBy: 1)
        }
        messageBytes += line.readableBytes + 2
        if problem != nil { return [] }
        if messageBytes > settings.maxMessageBytes {
            problem = .tooBig
            return []
        }
        if line.readableBytesView.contains(0) {
            problem = .nul
            return []
        }
        chunk.writeImmutableBuffer(line)
        chunk.writeInteger(UInt8(ascii: "\n"))
        if chunk.readableBytes >= Self.spillThreshold { return spill() }
        return []
    }

    /// Writes the buffered part of the message to its tmp/ file, off the event loop; input
    /// waits meanwhile, so a large message never sits whole in memory.
    private func spill() -> [LineAction] {
        guard let loop = eventLoop else { return [] }
        let bytes = chunk
        chunk = ByteBuffer()
        let existing = delivery
        let store = self.store
        let folder = store.folder(for: recipients[0])
        let future = Maildir.ioThreads.runIfActive(eventLoop: loop) { () throws -> MaildirDelivery in
            let target = try existing ?? store.beginDelivery(into: folder)
            try target.write(bytes)
            return target
        }
        return [.wait(future.assumeIsolated().map { target -> [LineAction] in
            self.delivery = target
            return []
        }.recover { _ in
            // Keep reading to the end of the message, then answer 451.
            self.problem = .storage
            return []
        })]
    }

    private func endOfData() -> [LineAction] {
        if let problem {
            abandonMessage()
            resetTransaction()
            switch problem {
            case .tooBig: return fail("552 5.3.4 Error: message file too big")
            case .lineTooLong: return fail("500 5.5.2 Error: message line longer than 998 octets")
            case .nul: return fail("554 5.6.0 Error: message contains NUL characters")
            case .storage: return [.reply("451 4.3.0 Error: local delivery failed, try again later\r\n")]
            }
        }
        guard let loop = eventLoop else { return [] }
        let bytes = chunk
        chunk = ByteBuffer()
        let existing = delivery
        delivery = nil
        let store = self.store
        let folders = recipients.map { store.folder(for: $0) }
        let id = transactionID
        let from = sender.map(\.description) ?? (senderText.isEmpty ? "<>" : senderText)
        let to = recipients.map(\.description).joined(separator: ",")
        resetTransaction()
        let future = Maildir.ioThreads.runIfActive(eventLoop: loop) { () throws -> String in
            let target = try existing ?? store.beginDelivery(into: folders[0])
            do {
                try target.write(bytes)
                return try target.commit(into: folders)
            } catch {
                target.discard()
                throw error
            }
        }
        let peer = peerAddress
        let logger = self.logger
        return [.wait(future.assumeIsolated().map { name -> [LineAction] in
            logger.info("message delivered", metadata: [
                "id": "\(id)", "from": "\(from)", "to": "\(to)", "peer": "\(peer)", "file": "\(name)",
            ])
            return [.reply("250 2.0.0 Ok: queued as \(id)\r\n")]
        }.recover { error in
            logger.error("delivery failed", metadata: ["id": "\(id)", "from": "\(from)", "to": "\(to)", "error": "\(error)"])
            return [.reply("451 4.3.0 Error: local delivery failed, try again later\r\n")]
        })]
    }

    /// Drops a message being read (its tmp/ file is removed off the event loop).
    private func abandonMessage() {
        chunk = ByteBuffer()
        problem = nil
        if let delivery, let loop = eventLoop {
            self.delivery = nil
            _ = Maildir.ioThreads.runIfActive(eventLoop: loop) { delivery.discard() }
        }
        delivery = nil
    }

    /// Return-Path and Received (RFC 5321 4.4), same for every recipient.
    private func traceHeaders() -> String {
        let protocolName = (utf8Transaction ? "UTF8SMTP" : extended ? "ESMTP" : "SMTP") + (tlsActive ? "S" : "")
        var text = "Return-Path: <\(sender.map(\.description) ?? senderText)>\n"
        text += "Received: from \(heloName) ([\(peerAddress)])\n\tby \(settings.hostname) (InetKit) with \(protocolName) id \(transactionID)"
        if recipients.count == 1 { text += "\n\tfor <\(recipients[0])>" }
        text += "; \(Self.rfc5322Date())\n"
        return text
    }

    static func makeTransactionID() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let serial = Self.serial.wrappingAdd(1, ordering: .relaxed).oldValue
        return String(now.tv_sec, radix: 36, uppercase: true) + String(serial, radix: 36, uppercase: true).leftPadded(to: 5)
    }

    /// The current time as RFC 5322 3.3 writes it, e.g. `Mon, 30 Nov 2026 09:05:06 +0000`.
    static func rfc5322Date() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S %z", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
