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

/// What an SMTP session asks of the mail store. Run by `SMTPEffects` on the mail I/O threads.
enum SMTPEffect {
    /// Write the buffered part of a message to its tmp/ file (begun in `folder` when `file` is nil).
    case spill(file: MaildirDelivery?, folder: String, bytes: ByteBuffer)
    /// Write the rest of the message and commit it into every recipient's Maildir, durably.
    case deliver(file: MaildirDelivery?, folders: [String], bytes: ByteBuffer)
    /// Remove an abandoned message's tmp/ file.
    case discard(MaildirDelivery)
}

/// What came of an `SMTPEffect`.
enum SMTPOutcome {
    case spilled(MaildirDelivery)
    case spillFailed
    /// The message's file name in new/.
    case delivered(String)
    case deliveryFailed(String)
    case discarded
}

/// One SMTP connection's state machine (RFC 5321 4.1.4 command order): a line in, actions
/// out. Pure: the mail store is reached only through `SMTPEffect`s, so unit tests and the
/// fuzzer drive whole sessions, DATA's end included, without sockets or files.
final class SMTPSession: LineSession {
    /// What HELO/EHLO told.
    struct Greeting: Equatable {
        var name: String
        var extended: Bool
    }

    /// The transaction MAIL opened.
    struct Envelope {
        var sender: MailAddress?
        /// The path as the client wrote it (for the null path and the log).
        var senderText: String
        var utf8: Bool
        var recipients: [MailAddress] = []
        /// A RCPT was tried (554 rather than 503 for DATA without recipients).
        var recipientAttempted = false
    }

    /// Why a message read to its end is refused.
    enum DataProblem {
        case tooBig, lineTooLong, nul
        /// Writing the spilled part failed: the rest is read and the message refused with 451.
        case storage
    }

    /// The message being read after 354.
    struct IncomingMessage {
        var id: String
        var buffered: ByteBuffer
        var bytes = 0
        var problem: DataProblem?
        var previousLineEndedCRLF = true
        /// Its tmp/ file, once part of it was spilled.
        var file: MaildirDelivery?
    }

    /// A message handed to the store, waiting for it to be durable.
    struct PendingDelivery {
        var id: String
        var from: String
        var to: String
        var recipients: [String] = []
        var size = 0
    }

    enum Phase {
        /// No HELO/EHLO yet (also after STARTTLS).
        case fresh
        /// Greeted; no transaction.
        case greeted(Greeting)
        /// MAIL accepted; collecting recipients.
        case transaction(Greeting, Envelope)
        /// Reading the message after 354 (and spilling it as it grows).
        case data(Greeting, Envelope, IncomingMessage)
        /// The message went to the store; the reply waits for it.
        case delivering(Greeting, PendingDelivery)
    }

    /// The phase in a word, for tests and logs.
    enum Stage: Equatable {
        case fresh, ready, transaction, data, delivering
    }

    let settings: SMTPSettings
    let store: Maildir
    let tlsAvailable: Bool
    let logger: Logger

    private(set) var phase = Phase.fresh
    private var tlsActive = false
    private var errors: LineErrorBudget
    private var peerAddress = "unknown"

    /// Spill to the tmp/ file once this much of a message is buffered.
    static let spillThreshold = 256 * 1024
    private static let serial = Atomic<Int>(0)

    init(settings: SMTPSettings, store: Maildir, tlsAvailable: Bool, tlsActive: Bool = false, logger: Logger = Logger(label: "inetkit.smtp")) {
        self.logger = logger
        self.tlsActive = tlsActive
        self.settings = settings
        errors = LineErrorBudget(limit: settings.maxErrors, closing: "421 4.7.0 \(settings.hostname) Error: too many errors")
        self.store = store
        self.tlsAvailable = tlsAvailable
    }

    var stage: Stage {
        switch phase {
        case .fresh: .fresh
        case .greeted: .ready
        case .transaction: .transaction
        case .data: .data
        case .delivering: .delivering
        }
    }

    var recipients: [MailAddress] {
        switch phase {
        case .transaction(_, let envelope), .data(_, let envelope, _): envelope.recipients
        default: []
        }
    }

    private var greeting: Greeting? {
        switch phase {
        case .fresh: nil
        case .greeted(let greeting), .transaction(let greeting, _), .data(let greeting, _, _), .delivering(let greeting, _): greeting
        }
    }

    var maximumLineLength: Int { SMTPSettings.maximumLineLength }

    var timeout: (seconds: Double, reply: String) {
        let data = if case .data = phase { true } else { false }
        return (data ? settings.dataTimeout : settings.commandTimeout, "421 4.4.2 \(settings.hostname) Error: timeout exceeded\r\n")
    }

    func start(context: LineSessionContext) -> [LineAction<SMTPEffect>] {
        peerAddress = context.peer?.ipAddress ?? "unknown"
        guard !context.overAddressLimit else {
            return [.reply("421 4.7.0 \(settings.hostname) Error: too many connections from \(peerAddress)\r\n"), .close]
        }
        return [.reply("220 \(settings.hostname) ESMTP InetKit\r\n")]
    }

    func closed() -> [SMTPEffect] {
        abandonMessage()
    }

    // MARK: - Commands

    /// The message's lines stay out of the transcript (the mail is in the store); AUTH's
    /// argument is masked.
    func transcript(of line: ByteBuffer) -> String? {
        if case .data = phase { return nil }
        let verb = line.readableBytesView.prefix { $0 != 0x20 }
        if String(decoding: verb, as: UTF8.self).uppercased() == "AUTH" { return maskedArgument(line, keep: 2) }
        return String(decoding: line.readableBytesView, as: UTF8.self)
    }

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction<SMTPEffect>] {
        if case .data(let greeting, let envelope, var message) = phase {
            let actions = dataLine(line, ending: ending, greeting: greeting, envelope: envelope, message: &message)
            if case .data = phase { phase = .data(greeting, envelope, message) }
            return actions
        }
        guard !line.readableBytesView.contains(0) else { return fail("500 5.5.2 Error: NUL character in command") }
        // RFC 5321 2.3.8: CR and LF only as a line's end. A bare CR (or any other control
        // character but TAB) in a command is refused, never echoed into a reply line.
        guard !line.readableBytesView.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
            return fail("500 5.5.2 Error: control character in command")
        }
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
            return resetTransaction() + ok("250 2.0.0 Ok")
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

    func lineTooLong() -> [LineAction<SMTPEffect>] {
        if case .data(let greeting, let envelope, var message) = phase {
            message.problem = message.problem ?? .lineTooLong
            message.previousLineEndedCRLF = true
            phase = .data(greeting, envelope, message)
            return []
        }
        return fail("500 5.5.2 Error: line too long")
    }

    private func ok(_ text: String) -> [LineAction<SMTPEffect>] {
        [.reply(text + "\r\n")]
    }

    /// A reply that counts as the client's error; past `max_errors` the session ends with 421.
    private func fail(_ text: String) -> [LineAction<SMTPEffect>] {
        errors.fail(text)
    }

    private func hello(_ argument: Substring, extended: Bool) -> [LineAction<SMTPEffect>] {
        let name = argument.split(separator: " ").first.map(String.init) ?? ""
        guard !name.isEmpty else { return fail("501 5.5.4 Syntax: \(extended ? "EHLO" : "HELO") hostname") }
        // The name goes into the Received: header: no control characters (a lone CR would
        // start a header line of the client's choosing), and no more than a domain's length.
        guard name.utf8.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return fail("501 5.5.2 Error: invalid \(extended ? "EHLO" : "HELO") name")
        }
        let cleanup = resetTransaction()
        phase = .greeted(Greeting(name: name, extended: extended))
        guard extended else { return cleanup + ok("250 \(settings.hostname)") }
        var lines = [
            settings.hostname, "PIPELINING", "SIZE \(settings.maxMessageBytes)", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
        ]
        if tlsAvailable, !tlsActive { lines.append("STARTTLS") }
        lines.append("HELP")
        var text = ""
        for (index, line) in lines.enumerated() {
            text += "250\(index == lines.count - 1 ? " " : "-")\(line)\r\n"
        }
        return cleanup + [.reply(text)]
    }

    private func mail(_ argument: Substring) -> [LineAction<SMTPEffect>] {
        guard let greeting else { return fail("503 5.5.1 Error: send HELO/EHLO first") }
        guard case .greeted = phase else { return fail("503 5.5.1 Error: nested MAIL command") }
        let extended = greeting.extended
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
        var sender: MailAddress?
        if !path.path.isEmpty {
            guard let address = MailAddress.parse(path.path, utf8: utf8) else {
                if !utf8, path.path.unicodeScalars.contains(where: { $0.value >= 0x80 }) {
                    return fail("553 5.6.7 Error: non-ASCII address needs SMTPUTF8")
                }
                return fail("501 5.1.7 Bad sender address syntax")
            }
            sender = address
        }
        phase = .transaction(greeting, Envelope(sender: sender, senderText: String(path.path), utf8: utf8))
        return ok("250 2.1.0 Ok")
    }

    private func recipient(_ argument: Substring) -> [LineAction<SMTPEffect>] {
        guard case .transaction(let greeting, var envelope) = phase else {
            return fail(greeting == nil ? "503 5.5.1 Error: send HELO/EHLO first" : "503 5.5.1 Error: need MAIL command")
        }
        guard argument.prefix(3).uppercased() == "TO:", let path = SMTPPathArgument.parse(argument.dropFirst(3)), !path.path.isEmpty else {
            return fail("501 5.5.4 Syntax: RCPT TO:<address>")
        }
        envelope.recipientAttempted = true
        phase = .transaction(greeting, envelope)
        let utf8Transaction = envelope.utf8
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
        if envelope.recipients.contains(where: { $0.key == address.key }) { return ok("250 2.1.5 Ok") }
        guard envelope.recipients.count < settings.maxRecipients else { return fail("452 4.5.3 Error: too many recipients") }
        envelope.recipients.append(address)
        phase = .transaction(greeting, envelope)
        return ok("250 2.1.5 Ok")
    }

    private func startTLS(_ argument: Substring) -> [LineAction<SMTPEffect>] {
        guard tlsAvailable else { return fail("502 5.5.1 Error: command not implemented") }
        guard !tlsActive else { return fail("554 5.5.1 Error: TLS already active") }
        guard argument.isEmpty else { return fail("501 5.5.4 Syntax: STARTTLS") }
        // RFC 3207 4.2: everything learnt before TLS is forgotten.
        tlsActive = true
        let cleanup = resetTransaction()
        phase = .fresh
        return cleanup + [.reply("220 2.0.0 Ready to start TLS\r\n"), .startTLS]
    }

    /// Ends any transaction (RSET, EHLO, STARTTLS); a message's tmp/ file is removed.
    private func resetTransaction() -> [LineAction<SMTPEffect>] {
        let cleanup = abandonMessage().map { LineAction<SMTPEffect>.signal($0) }
        if let greeting { phase = .greeted(greeting) }
        return cleanup
    }

    // MARK: - DATA

    private func data(_ argument: Substring) -> [LineAction<SMTPEffect>] {
        guard argument.isEmpty else { return fail("501 5.5.4 Syntax: DATA") }
        guard case .transaction(let greeting, let envelope) = phase else {
            return fail(greeting == nil ? "503 5.5.1 Error: send HELO/EHLO first" : "503 5.5.1 Error: need MAIL command")
        }
        guard !envelope.recipients.isEmpty else {
            return fail(envelope.recipientAttempted ? "554 5.5.1 Error: no valid recipients" : "503 5.5.1 Error: need RCPT command")
        }
        let id = Self.makeTransactionID()
        var buffered = ByteBuffer()
        buffered.reserveCapacity(16 * 1024)
        buffered.writeString(traceHeaders(greeting: greeting, envelope: envelope, id: id))
        phase = .data(greeting, envelope, IncomingMessage(id: id, buffered: buffered))
        return [.reply("354 End data with <CR><LF>.<CR><LF>\r\n")]
    }

    private func dataLine(_ line: ByteBuffer, ending: LineEnding, greeting: Greeting, envelope: Envelope,
                          message: inout IncomingMessage) -> [LineAction<SMTPEffect>] {
        var line = line
        if line.readableBytes == 1, line.getInteger(at: line.readerIndex, as: UInt8.self) == UInt8(ascii: ".") {
            // Only <CRLF>.<CRLF> ends the message; a dot line with a bare LF is content (as
            // Postfix's smtpd_forbid_bare_newline=normalize does; no SMTP smuggling).
            if ending == .crlf, message.previousLineEndedCRLF { return endOfData(greeting: greeting, envelope: envelope, message: message) }
        }
        message.previousLineEndedCRLF = ending == .crlf
        if line.getInteger(at: line.readerIndex, as: UInt8.self) == UInt8(ascii: ".") {
            line.moveReaderIndex(forwardBy: 1)
        }
        // Counted up to the limit only: the count itself can never overflow.
        message.bytes = min(message.bytes + line.readableBytes + 2, settings.maxMessageBytes + 1)
        if message.problem != nil { return [] }
        if message.bytes > settings.maxMessageBytes {
            message.problem = .tooBig
            return []
        }
        if line.readableBytesView.contains(0) {
            message.problem = .nul
            return []
        }
        message.buffered.writeImmutableBuffer(line)
        message.buffered.writeInteger(UInt8(ascii: "\n"))
        if message.buffered.readableBytes >= Self.spillThreshold {
            // Written to the tmp/ file off the event loop; input waits meanwhile, so a large
            // message never sits whole in memory.
            let bytes = message.buffered
            message.buffered = ByteBuffer()
            return [.perform(.spill(file: message.file, folder: store.folder(for: envelope.recipients[0]), bytes: bytes))]
        }
        return []
    }

    func complete(_ outcome: SMTPOutcome) -> [LineAction<SMTPEffect>] {
        switch (outcome, phase) {
        case (.spilled(let file), .data(let greeting, let envelope, var message)):
            message.file = file
            phase = .data(greeting, envelope, message)
            return []
        case (.spillFailed, .data(let greeting, let envelope, var message)):
            // Keep reading to the end of the message, then answer 451.
            message.problem = .storage
            phase = .data(greeting, envelope, message)
            return []
        case (.delivered(let name), .delivering(let greeting, let pending)):
            phase = .greeted(greeting)
            logger.info("message delivered", metadata: [
                "id": "\(pending.id)", "from": "\(pending.from)", "to": "\(pending.to)", "peer": "\(peerAddress)", "file": "\(name)",
            ])
            return [.event(LineEvent("smtp.message", [
                ("queue_id", .string(pending.id)), ("from", .string(pending.from)), ("to", .strings(pending.recipients)),
                ("size", .int(pending.size)), ("helo", .string(greeting.name)), ("file", .string(name)),
            ])), .reply("250 2.0.0 Ok: queued as \(pending.id)\r\n")]
        case (.deliveryFailed(let reason), .delivering(let greeting, let pending)):
            phase = .greeted(greeting)
            logger.error("delivery failed", metadata: ["id": "\(pending.id)", "from": "\(pending.from)", "to": "\(pending.to)", "error": "\(reason)"])
            return [.reply("451 4.3.0 Error: local delivery failed, try again later\r\n")]
        case (.spilled(let file), _):
            // The message was abandoned meanwhile (the connection is ending): drop its file.
            return [.signal(.discard(file))]
        default:
            return []
        }
    }

    private func endOfData(greeting: Greeting, envelope: Envelope, message: IncomingMessage) -> [LineAction<SMTPEffect>] {
        if let problem = message.problem {
            let cleanup = message.file.map { [LineAction<SMTPEffect>.signal(.discard($0))] } ?? []
            phase = .greeted(greeting)
            switch problem {
            case .tooBig: return cleanup + fail("552 5.3.4 Error: message file too big")
            case .lineTooLong: return cleanup + fail("500 5.5.2 Error: message line longer than 998 octets")
            case .nul: return cleanup + fail("554 5.6.0 Error: message contains NUL characters")
            case .storage: return cleanup + [.reply("451 4.3.0 Error: local delivery failed, try again later\r\n")]
            }
        }
        let from = envelope.sender.map(\.description) ?? (envelope.senderText.isEmpty ? "<>" : envelope.senderText)
        let to = envelope.recipients.map(\.description).joined(separator: ",")
        phase = .delivering(greeting, PendingDelivery(id: message.id, from: from, to: to, recipients: envelope.recipients.map(\.description), size: message.bytes))
        return [.perform(.deliver(file: message.file, folders: envelope.recipients.map { store.folder(for: $0) }, bytes: message.buffered))]
    }

    /// Drops a message being read: the effect that removes its tmp/ file, if it has one.
    private func abandonMessage() -> [SMTPEffect] {
        guard case .data(let greeting, let envelope, let message) = phase else { return [] }
        phase = .transaction(greeting, envelope)
        return message.file.map { [.discard($0)] } ?? []
    }

    /// Return-Path and Received (RFC 5321 4.4), same for every recipient.
    private func traceHeaders(greeting: Greeting, envelope: Envelope, id: String) -> String {
        let protocolName = (envelope.utf8 ? "UTF8SMTP" : greeting.extended ? "ESMTP" : "SMTP") + (tlsActive ? "S" : "")
        var text = "Return-Path: <\(envelope.sender.map(\.description) ?? envelope.senderText)>\n"
        text += "Received: from \(greeting.name) ([\(peerAddress)])\n\tby \(settings.hostname) (InetKit) with \(protocolName) id \(id)"
        if envelope.recipients.count == 1 { text += "\n\tfor <\(envelope.recipients[0])>" }
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
