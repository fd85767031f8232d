import InetCore
import InetLine
import NIOCore
import NIOPosix

/// One POP3 connection (RFC 1939): AUTHORIZATION, then TRANSACTION on a locked maildrop,
/// then UPDATE at QUIT, where the messages marked with DELE are removed.
final class POP3Session: LineSession {
    enum Phase: Equatable {
        case authorization
        case transaction
        case done
    }

    let settings: POP3Settings
    let store: Maildir
    let tlsAvailable: Bool

    private(set) var phase = Phase.authorization
    private var userName: String?
    private var tlsActive = false
    private var errors: LineErrorBudget
    private var eventLoop: (any EventLoop)?
    private var lockedFolder: String?
    private(set) var messages: [MaildirMessage] = []
    private(set) var deleted = Set<Int>()

    init(settings: POP3Settings, store: Maildir, tlsAvailable: Bool) {
        self.settings = settings
        self.store = store
        self.tlsAvailable = tlsAvailable
        errors = LineErrorBudget(limit: settings.maxErrors, closing: "-ERR too many errors, closing")
    }

    var maximumLineLength: Int { POP3Settings.maximumLineLength }

    var timeout: (seconds: Double, reply: String) {
        (settings.commandTimeout, "-ERR autologout: idle for too long\r\n")
    }

    func start(context: LineSessionContext) -> [LineAction] {
        eventLoop = context.eventLoop
        return [.reply("+OK InetKit POP3 server ready\r\n")]
    }

    func closed() {
        // RFC 1939 6: without QUIT, nothing is deleted.
        unlock()
    }

    private func unlock() {
        if let lockedFolder { MailboxLocks.shared.unlock(lockedFolder) }
        lockedFolder = nil
    }

    func lineTooLong() -> [LineAction] {
        fail("-ERR line too long")
    }

    private func fail(_ text: String) -> [LineAction] {
        errors.fail(text)
    }

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction] {
        guard !line.readableBytesView.contains(0),
              let text = String(validating: line.readableBytesView, as: UTF8.self) else {
            return fail("-ERR bad characters in command")
        }
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let argument = verbEnd < text.endIndex ? String(text[text.index(after: verbEnd)...]) : ""
        let words = argument.split(separator: " ")
        switch (verb, phase) {
        case ("CAPA", _):
            var capabilities = ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            if tlsAvailable, !tlsActive, phase == .authorization { capabilities.append("STLS") }
            capabilities.append("IMPLEMENTATION InetKit")
            return [.reply("+OK Capability list follows\r\n" + capabilities.map { $0 + "\r\n" }.joined() + ".\r\n")]
        case ("QUIT", .authorization):
            phase = .done
            return [.reply("+OK InetKit POP3 server signing off\r\n"), .close]
        case ("QUIT", .transaction):
            return update()
        case ("NOOP", .transaction):
            return [.reply("+OK\r\n")]
        case ("USER", .authorization):
            guard words.count == 1 else { return fail("-ERR usage: USER name") }
            userName = String(words[0])
            return [.reply("+OK send PASS\r\n")]
        case ("PASS", .authorization):
            guard let userName else { return fail("-ERR USER first") }
            self.userName = nil
            return login(userName, password: argument)
        case ("STLS", .authorization):
            guard tlsAvailable else { return fail("-ERR STLS not available") }
            guard !tlsActive else { return fail("-ERR TLS already active") }
            tlsActive = true
            userName = nil
            return [.reply("+OK Begin TLS negotiation\r\n"), .startTLS]
        case ("STAT", .transaction):
            let live = liveMessages
            return [.reply("+OK \(live.count) \(live.reduce(0) { $0 + $1.1.virtualSize })\r\n")]
        case ("LIST", .transaction), ("UIDL", .transaction):
            let field: (MaildirMessage) -> String = verb == "LIST" ? { "\($0.virtualSize)" } : { $0.uniqueID }
            if words.isEmpty {
                let live = liveMessages
                var text = verb == "LIST"
                    ? "+OK \(live.count) messages (\(live.reduce(0) { $0 + $1.1.virtualSize }) octets)\r\n"
                    : "+OK unique-id listing follows\r\n"
                for (number, message) in live { text += "\(number) \(field(message))\r\n" }
                return [.reply(text + ".\r\n")]
            }
            guard words.count == 1 else { return fail("-ERR usage: \(verb) [msg]") }
            switch message(words[0]) {
            case .success(let (number, message)): return [.reply("+OK \(number) \(field(message))\r\n")]
            case .failure(let error): return fail(error.text)
            }
        case ("RETR", .transaction):
            guard words.count == 1 else { return fail("-ERR usage: RETR msg") }
            switch message(words[0]) {
            case .success(let (_, message)): return retrieve(message, bodyLines: nil)
            case .failure(let error): return fail(error.text)
            }
        case ("TOP", .transaction):
            guard words.count == 2, let lines = Int(words[1]), lines >= 0 else { return fail("-ERR usage: TOP msg n") }
            switch message(words[0]) {
            case .success(let (_, message)): return retrieve(message, bodyLines: lines)
            case .failure(let error): return fail(error.text)
            }
        case ("DELE", .transaction):
            guard words.count == 1 else { return fail("-ERR usage: DELE msg") }
            switch message(words[0]) {
            case .success(let (number, _)):
                deleted.insert(number)
                return [.reply("+OK message \(number) deleted\r\n")]
            case .failure(let error): return fail(error.text)
            }
        case ("RSET", .transaction):
            deleted = []
            return [.reply("+OK maildrop has \(messages.count) messages\r\n")]
        case ("USER", _), ("PASS", _), ("STLS", _):
            return fail("-ERR already authenticated")
        case ("STAT", _), ("LIST", _), ("UIDL", _), ("RETR", _), ("TOP", _), ("DELE", _), ("RSET", _), ("NOOP", _):
            return fail("-ERR not authenticated")
        case ("APOP", _), ("AUTH", _):
            return fail("-ERR not supported; use USER and PASS")
        default:
            return fail("-ERR unknown command")
        }
    }

    struct MessageError: Error {
        var text: String
    }

    /// Messages not marked deleted, with their numbers.
    private var liveMessages: [(Int, MaildirMessage)] {
        messages.enumerated().compactMap { deleted.contains($0.offset + 1) ? nil : ($0.offset + 1, $0.element) }
    }

    private func message(_ word: Substring) -> Result<(Int, MaildirMessage), MessageError> {
        guard let number = Int(word), number >= 1, number <= messages.count else {
            return .failure(MessageError(text: "-ERR no such message"))
        }
        guard !deleted.contains(number) else { return .failure(MessageError(text: "-ERR message \(number) already deleted")) }
        return .success((number, messages[number - 1]))
    }

    private func login(_ name: String, password: String) -> [LineAction] {
        guard let loop = eventLoop else { return [] }
        let user = MailAddress.parse(Substring(name), utf8: true).flatMap { settings.users[$0.key] }
        guard let user, Secret.equal(user.password, password) else {
            let close = errors.spend()
            let reply = "-ERR [AUTH] invalid user name or password\r\n"
            let delay = TimeAmount.nanoseconds(Int64(settings.authDelay * 1e9))
            let future = loop.assumeIsolated().scheduleTask(in: delay) { () -> [LineAction] in
                close ? [.reply(reply), .close] : [.reply(reply)]
            }.futureResult.assumeIsolated()
            return [.wait(future)]
        }
        let folder = store.folder(for: user.address)
        guard MailboxLocks.shared.lock(folder) else {
            return fail("-ERR [IN-USE] mailbox is locked by another session")
        }
        lockedFolder = folder
        let store = self.store
        let scan = Maildir.ioThreads.runIfActive(eventLoop: loop) { try store.messages(in: folder) }
        return [.wait(scan.assumeIsolated().map { found -> [LineAction] in
            self.messages = found
            self.phase = .transaction
            let size = found.reduce(0) { $0 + $1.virtualSize }
            return [.reply("+OK maildrop has \(found.count) messages (\(size) octets)\r\n")]
        }.recover { _ in
            self.unlock()
            return [.reply("-ERR [SYS/TEMP] cannot open the maildrop\r\n")]
        })]
    }

    private func retrieve(_ message: MaildirMessage, bodyLines: Int?) -> [LineAction] {
        guard let loop = eventLoop else { return [] }
        let path = message.path
        let opened = Maildir.ioThreads.runIfActive(eventLoop: loop) { try MaildirReader(path: path) }
        return [.wait(opened.assumeIsolated().map { reader -> [LineAction] in
            let header = bodyLines == nil ? "+OK \(message.virtualSize) octets\r\n" : "+OK top of message follows\r\n"
            return [.reply(header)] + self.stream(reader, encoder: POP3MessageEncoder(bodyLines: bodyLines))
        }.recover { _ in
            [.reply("-ERR [SYS/TEMP] message cannot be read (deleted by another client?)\r\n")]
        })]
    }

    /// The next chunk of a retrieval: read off the event loop, encoded, written, and the next
    /// one only after this one reached the socket.
    private func stream(_ reader: MaildirReader, encoder: POP3MessageEncoder) -> [LineAction] {
        guard let loop = eventLoop else { return [] }
        let chunk = Maildir.ioThreads.runIfActive(eventLoop: loop) { try reader.next(ByteBufferAllocator()) }
        return [.wait(chunk.assumeIsolated().map { bytes -> [LineAction] in
            var encoder = encoder
            var out = ByteBuffer()
            guard let bytes, !encoder.finished else {
                encoder.finish(into: &out)
                return [.write(out)]
            }
            encoder.encode(bytes, into: &out)
            return [.write(out), .flushAndWait] + self.stream(reader, encoder: encoder)
        }.recover { _ in
            // The reply has begun; the only honest end is to drop the connection.
            [.close]
        })]
    }

    /// QUIT in TRANSACTION: the UPDATE state removes what DELE marked.
    private func update() -> [LineAction] {
        guard let loop = eventLoop else { return [] }
        phase = .done
        let doomed = deleted.sorted().map { messages[$0 - 1] }
        let left = messages.count - doomed.count
        let store = self.store
        let removal = Maildir.ioThreads.runIfActive(eventLoop: loop) { () -> Bool in
            var allRemoved = true
            for message in doomed {
                do { try store.remove(message) } catch { allRemoved = false }
            }
            return allRemoved
        }
        return [.wait(removal.assumeIsolated().map { allRemoved -> [LineAction] in
            self.unlock()
            let reply = allRemoved
                ? "+OK InetKit POP3 server signing off (\(left) messages left)\r\n"
                : "-ERR [SYS/TEMP] some deleted messages not removed\r\n"
            return [.reply(reply), .close]
        }.recover { _ in
            self.unlock()
            return [.reply("-ERR [SYS/TEMP] some deleted messages not removed\r\n"), .close]
        })]
    }
}
