import InetCore
import InetLine
import NIOCore

/// What a POP3 session asks of the mail store. Run by `POP3Effects`.
enum POP3Effect {
    /// Wait before answering a failed login (slows password guessing).
    case delay(seconds: Double)
    /// Lock the maildrop (one session at a time, RFC 1939 8) and list its messages.
    case open(folder: String)
    /// Open a message for RETR or TOP.
    case read(MaildirMessage)
    /// The next chunk of a message being sent.
    case nextChunk(MaildirReader)
    /// The UPDATE state: remove the messages marked with DELE, then unlock.
    case remove([MaildirMessage], folder: String)
    /// Let go of the maildrop (the connection ended without QUIT: nothing is deleted).
    case unlock(folder: String)
}

/// What came of a `POP3Effect`.
enum POP3Outcome {
    case delayed
    case opened([MaildirMessage])
    /// Another session holds the maildrop.
    case locked
    case openFailed
    case reader(MaildirReader)
    case unreadable
    /// A chunk of the message, or nil at its end.
    case chunk(ByteBuffer?)
    case readFailed
    case removed(allRemoved: Bool)
    case unlocked
}

/// One POP3 connection (RFC 1939): AUTHORIZATION, then TRANSACTION on a locked maildrop,
/// then UPDATE at QUIT, where the messages marked with DELE are removed. A pure state
/// machine: the store is reached through `POP3Effect`s.
final class POP3Session: LineSession {
    /// A locked maildrop in the TRANSACTION state.
    struct Maildrop {
        var folder: String
        var messages: [MaildirMessage]
        var deleted = Set<Int>()
    }

    /// A message being sent for RETR or TOP.
    struct Retrieval {
        var message: MaildirMessage
        var top: Bool
        var encoder: POP3MessageEncoder
        /// Open once `read` succeeded.
        var reader: MaildirReader?
    }

    enum Phase {
        /// USER may have named someone.
        case authorization(user: String?)
        /// PASS was wrong: the -ERR comes after a delay, and then the connection may end.
        case rejecting(closing: Bool)
        /// PASS was right: the maildrop is being locked and listed.
        case opening(folder: String)
        case transaction(Maildrop)
        /// RETR or TOP is streaming a message.
        case retrieving(Maildrop, Retrieval)
        /// QUIT: the deletions are being made.
        case updating(left: Int)
        case done
    }

    /// The phase in a word, for tests.
    enum Stage: Equatable {
        case authorization, transaction, done
    }

    let settings: POP3Settings
    let store: Maildir
    let tlsAvailable: Bool

    private(set) var phase = Phase.authorization(user: nil)
    private var tlsActive = false
    private var errors: LineErrorBudget

    init(settings: POP3Settings, store: Maildir, tlsAvailable: Bool, tlsActive: Bool = false) {
        self.tlsActive = tlsActive
        self.settings = settings
        self.store = store
        self.tlsAvailable = tlsAvailable
        errors = LineErrorBudget(limit: settings.maxErrors, closing: "-ERR too many errors, closing")
    }

    var stage: Stage {
        switch phase {
        case .authorization, .rejecting, .opening: .authorization
        case .transaction, .retrieving: .transaction
        case .updating, .done: .done
        }
    }

    var maildrop: Maildrop? {
        switch phase {
        case .transaction(let drop), .retrieving(let drop, _): drop
        default: nil
        }
    }

    var maximumLineLength: Int { POP3Settings.maximumLineLength }

    var timeout: (seconds: Double, reply: String) {
        (settings.commandTimeout, "-ERR autologout: idle for too long\r\n")
    }

    func start(context: LineSessionContext) -> [LineAction<POP3Effect>] {
        [.reply("+OK InetKit POP3 server ready\r\n")]
    }

    func closed() -> [POP3Effect] {
        // RFC 1939 6: without QUIT, nothing is deleted.
        switch phase {
        case .transaction(let drop), .retrieving(let drop, _):
            phase = .done
            return [.unlock(folder: drop.folder)]
        case .opening(let folder):
            phase = .done
            return [.unlock(folder: folder)]
        default:
            return []
        }
    }

    func lineTooLong() -> [LineAction<POP3Effect>] {
        fail("-ERR line too long")
    }

    private func fail(_ text: String) -> [LineAction<POP3Effect>] {
        errors.fail(text)
    }

    private func reply(_ text: String) -> [LineAction<POP3Effect>] {
        [.reply(text + "\r\n")]
    }

    /// PASS, APOP and AUTH carry secrets: the transcript shows `PASS ****`.
    func transcript(of line: ByteBuffer) -> String? {
        let verb = line.readableBytesView.prefix { $0 != 0x20 }
        switch String(decoding: verb, as: UTF8.self).uppercased() {
        case "PASS": return maskedArgument(line)
        case "APOP": return maskedArgument(line, keep: 2)
        case "AUTH": return maskedArgument(line, keep: 2)
        default: return String(decoding: line.readableBytesView, as: UTF8.self)
        }
    }

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction<POP3Effect>] {
        guard !line.readableBytesView.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }),
              let text = String(validating: line.readableBytesView, as: UTF8.self) else {
            return fail("-ERR bad characters in command")
        }
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let argument = verbEnd < text.endIndex ? String(text[text.index(after: verbEnd)...]) : ""
        let words = argument.split(separator: " ")
        if verb == "CAPA" {
            var capabilities = ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            if tlsAvailable, !tlsActive, stage == .authorization { capabilities.append("STLS") }
            capabilities.append("IMPLEMENTATION InetKit")
            return [.reply("+OK Capability list follows\r\n" + capabilities.map { $0 + "\r\n" }.joined() + ".\r\n")]
        }
        switch phase {
        case .authorization(let user):
            return authorization(verb, argument: argument, words: words, user: user)
        case .transaction(let drop):
            return transaction(verb, words: words, drop: drop)
        default:
            // No line is read while an effect runs; after QUIT nothing more is.
            return []
        }
    }

    // MARK: - AUTHORIZATION

    private func authorization(_ verb: String, argument: String, words: [Substring], user: String?) -> [LineAction<POP3Effect>] {
        switch verb {
        case "QUIT":
            phase = .done
            return [.reply("+OK InetKit POP3 server signing off\r\n"), .close]
        case "USER":
            guard words.count == 1 else { return fail("-ERR usage: USER name") }
            phase = .authorization(user: String(words[0]))
            return reply("+OK send PASS")
        case "PASS":
            guard let user else { return fail("-ERR USER first") }
            phase = .authorization(user: nil)
            return login(user, password: argument)
        case "STLS":
            guard tlsAvailable else { return fail("-ERR STLS not available") }
            guard !tlsActive else { return fail("-ERR TLS already active") }
            tlsActive = true
            phase = .authorization(user: nil)
            return [.reply("+OK Begin TLS negotiation\r\n"), .startTLS]
        case "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP":
            return fail("-ERR not authenticated")
        case "APOP", "AUTH":
            return fail("-ERR not supported; use USER and PASS")
        default:
            return fail("-ERR unknown command")
        }
    }

    private func login(_ name: String, password: String) -> [LineAction<POP3Effect>] {
        let user = MailAddress.parse(Substring(name), utf8: true).flatMap { settings.users[$0.key] }
        guard let user, Secret.equal(user.password, password) else {
            phase = .rejecting(closing: errors.spend())
            return [.event(LineEvent("pop3.login", [("user", .string(name)), ("ok", .bool(false)), ("password", .secret(String(password.prefix(256))))])),
                    .perform(.delay(seconds: settings.authDelay))]
        }
        let folder = store.folder(for: user.address)
        phase = .opening(folder: folder)
        return [.event(LineEvent("pop3.login", [("user", .string(name)), ("ok", .bool(true)), ("password", .secret(String(password.prefix(256))))])),
                .perform(.open(folder: folder))]
    }

    // MARK: - TRANSACTION

    private func transaction(_ verb: String, words: [Substring], drop: Maildrop) -> [LineAction<POP3Effect>] {
        var drop = drop
        switch verb {
        case "QUIT":
            return update(drop)
        case "NOOP":
            return reply("+OK")
        case "STAT":
            let live = Self.live(drop)
            return reply("+OK \(live.count) \(live.reduce(0) { $0 + $1.1.virtualSize })")
        case "LIST", "UIDL":
            let field: (MaildirMessage) -> String = verb == "LIST" ? { "\($0.virtualSize)" } : { $0.uniqueID }
            if words.isEmpty {
                let live = Self.live(drop)
                var text = verb == "LIST"
                    ? "+OK \(live.count) messages (\(live.reduce(0) { $0 + $1.1.virtualSize }) octets)\r\n"
                    : "+OK unique-id listing follows\r\n"
                for (number, message) in live { text += "\(number) \(field(message))\r\n" }
                return [.reply(text + ".\r\n")]
            }
            guard words.count == 1 else { return fail("-ERR usage: \(verb) [msg]") }
            switch Self.message(words[0], in: drop) {
            case .success(let (number, message)): return reply("+OK \(number) \(field(message))")
            case .failure(let error): return fail(error.text)
            }
        case "RETR", "TOP":
            var bodyLines: Int?
            if verb == "TOP" {
                guard words.count == 2, let lines = Self.number(words[1]) else { return fail("-ERR usage: TOP msg n") }
                bodyLines = lines
            } else {
                guard words.count == 1 else { return fail("-ERR usage: RETR msg") }
            }
            switch Self.message(words[0], in: drop) {
            case .success(let (number, message)):
                phase = .retrieving(drop, Retrieval(message: message, top: bodyLines != nil, encoder: POP3MessageEncoder(bodyLines: bodyLines)))
                var fields: [(String, LineEvent.Value)] = [("message", .int(number)), ("uid", .string(message.uniqueID)), ("size", .int(message.virtualSize))]
                if let bodyLines { fields.append(("top_lines", .int(bodyLines))) }
                return [.event(LineEvent(verb == "TOP" ? "pop3.top" : "pop3.retr", fields)), .perform(.read(message))]
            case .failure(let error):
                return fail(error.text)
            }
        case "DELE":
            guard words.count == 1 else { return fail("-ERR usage: DELE msg") }
            switch Self.message(words[0], in: drop) {
            case .success(let (number, message)):
                drop.deleted.insert(number)
                phase = .transaction(drop)
                return [.event(LineEvent("pop3.dele", [("message", .int(number)), ("uid", .string(message.uniqueID))]))] + reply("+OK message \(number) deleted")
            case .failure(let error):
                return fail(error.text)
            }
        case "RSET":
            drop.deleted = []
            phase = .transaction(drop)
            return reply("+OK maildrop has \(drop.messages.count) messages")
        case "USER", "PASS", "STLS":
            return fail("-ERR already authenticated")
        case "APOP", "AUTH":
            return fail("-ERR not supported; use USER and PASS")
        default:
            return fail("-ERR unknown command")
        }
    }

    struct MessageError: Error {
        var text: String
    }

    /// Messages not marked deleted, with their numbers.
    private static func live(_ drop: Maildrop) -> [(Int, MaildirMessage)] {
        drop.messages.enumerated().compactMap { drop.deleted.contains($0.offset + 1) ? nil : ($0.offset + 1, $0.element) }
    }

    /// A message number or line count: ASCII digits only, no sign, within Int.
    static func number(_ word: Substring) -> Int? {
        guard (1...18).contains(word.utf8.count), word.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(word)
    }

    private static func message(_ word: Substring, in drop: Maildrop) -> Result<(Int, MaildirMessage), MessageError> {
        guard let number = number(word), number >= 1, number <= drop.messages.count else {
            return .failure(MessageError(text: "-ERR no such message"))
        }
        guard !drop.deleted.contains(number) else { return .failure(MessageError(text: "-ERR message \(number) already deleted")) }
        return .success((number, drop.messages[number - 1]))
    }

    /// QUIT in TRANSACTION: the UPDATE state removes what DELE marked.
    private func update(_ drop: Maildrop) -> [LineAction<POP3Effect>] {
        let doomed = drop.deleted.sorted().map { drop.messages[$0 - 1] }
        phase = .updating(left: drop.messages.count - doomed.count)
        return [.event(LineEvent("pop3.update", [("deleted", .int(doomed.count)), ("uids", .strings(doomed.prefix(32).map(\.uniqueID)))])),
                .perform(.remove(doomed, folder: drop.folder))]
    }

    // MARK: - Outcomes

    func complete(_ outcome: POP3Outcome) -> [LineAction<POP3Effect>] {
        switch (outcome, phase) {
        case (.delayed, .rejecting(let closing)):
            phase = .authorization(user: nil)
            let text = "-ERR [AUTH] invalid user name or password\r\n"
            return closing ? [.reply(text), .close] : [.reply(text)]
        case (.opened(let messages), .opening(let folder)):
            phase = .transaction(Maildrop(folder: folder, messages: messages))
            let size = messages.reduce(0) { $0 + $1.virtualSize }
            return reply("+OK maildrop has \(messages.count) messages (\(size) octets)")
        case (.locked, .opening):
            phase = .authorization(user: nil)
            return fail("-ERR [IN-USE] mailbox is locked by another session")
        case (.openFailed, .opening):
            phase = .authorization(user: nil)
            return reply("-ERR [SYS/TEMP] cannot open the maildrop")
        case (.reader(let reader), .retrieving(let drop, var retrieval)):
            retrieval.reader = reader
            phase = .retrieving(drop, retrieval)
            let header = retrieval.top ? "+OK top of message follows\r\n" : "+OK \(retrieval.message.virtualSize) octets\r\n"
            return [.reply(header), .perform(.nextChunk(reader))]
        case (.unreadable, .retrieving(let drop, _)):
            phase = .transaction(drop)
            return reply("-ERR [SYS/TEMP] message cannot be read (deleted by another client?)")
        case (.chunk(let bytes), .retrieving(let drop, var retrieval)):
            // Each chunk is read off the event loop, encoded, written, and the next one asked
            // for only once this one reached the socket.
            var out = ByteBuffer()
            guard let bytes, let reader = retrieval.reader, !retrieval.encoder.finished else {
                retrieval.encoder.finish(into: &out)
                phase = .transaction(drop)
                return [.write(out)]
            }
            retrieval.encoder.encode(bytes, into: &out)
            phase = .retrieving(drop, retrieval)
            return [.write(out), .flushAndWait, .perform(.nextChunk(reader))]
        case (.readFailed, .retrieving):
            // The reply has begun; the only honest end is to drop the connection.
            return [.close]
        case (.removed(let allRemoved), .updating(let left)):
            phase = .done
            let text = allRemoved
                ? "+OK InetKit POP3 server signing off (\(left) messages left)\r\n"
                : "-ERR [SYS/TEMP] some deleted messages not removed\r\n"
            return [.reply(text), .close]
        default:
            return []
        }
    }
}
