import InetCore
import InetTLS
import Logging
import NIOConcurrencyHelpers
import InetLine
import NIOCore
import NIOPosix
import NIOSSL

/// The POP3 service's options (`services.pop3`).
struct POP3Settings: Sendable {
    struct User: Sendable {
        var address: MailAddress
        var password: String
    }

    /// Users by lower-case address.
    var users: [String: User] = [:]
    /// Delay before answering a wrong password (RFC 1939 13 suggests one against guessing).
    var authDelay = 1.0
    var commandTimeout = 600.0
    var maxErrors = 10
    /// RFC 2449 4: a command line is at most 255 octets.
    static let maximumLineLength = 255

    static let keys: Set<String> = ["users", "auth_delay", "command_timeout", "max_errors", "mail_dir"]

    init() {}

    init(options: ServiceOptions) throws(ConfigError) {
        if let reader = options.reader, let list = reader.value("users") {
            guard case .list(let items, _) = list else { throw reader.error("users", "expected a list of {name, password}") }
            for item in items {
                let entry = try ConfigReader(item, file: reader.file, path: reader.keyPath("users"))
                try entry.rejectUnknownKeys(allowed: ["name", "password"])
                guard let name = try entry.string("name"), let password = try entry.string("password") else {
                    throw entry.error("name", "each user needs name (a mailbox address) and password")
                }
                guard let address = MailAddress.parse(Substring(name), utf8: true), address.isStorable else {
                    throw entry.error("name", "'\(name)' is not a mailbox address such as carol@inetkit.test")
                }
                users[address.key] = User(address: address, password: password)
            }
        }
        let reader = options.reader
        if let value = try reader?.seconds("auth_delay", range: 0...60) { authDelay = value }
        if let value = try reader?.seconds("command_timeout", range: 0.01...86_400) { commandTimeout = value }
        if let value = try reader?.int("max_errors", range: 1...10_000) { maxErrors = value }
    }
}

/// Mailboxes with an open POP3 session (RFC 1939 8: one session per maildrop at a time).
final class MailboxLocks: Sendable {
    static let shared = MailboxLocks()
    private let held = NIOLockedValueBox<Set<String>>([])

    func lock(_ folder: String) -> Bool {
        held.withLockedValue { $0.insert(folder).inserted }
    }

    func unlock(_ folder: String) {
        _ = held.withLockedValue { $0.remove(folder) }
    }
}

/// POP3 on port 110 (RFC 1939, CAPA of RFC 2449): users read and delete the mail SMTP
/// delivered to their Maildir. STLS with a certificate.
public struct POP3Service: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "pop3", wellKnownPort: 110, transports: [.tcp], optionKeys: POP3Settings.keys.union(ServerTLS.keys),
        summary: "lets users read the Maildirs SMTP fills (RFC 1939), STLS with a certificate"
    ) { options throws(ConfigError) in
        try POP3Service(options: options)
    }

    /// POP3S (RFC 8314): the same sessions on port 995, TLS from the first byte, with the
    /// options of `services.pop3` wherever `services.pop3s` does not give its own.
    public static let implicitTLSDescriptor = ServiceDescriptor(
        name: "pop3s", wellKnownPort: 995, transports: [.tcp], optionKeys: POP3Settings.keys.union(ServerTLS.keys),
        summary: "POP3 with TLS from the first byte (RFC 8314)", inheritsOptionsOf: "pop3"
    ) { options throws(ConfigError) in
        let service = try POP3Service(options: options, implicitTLS: true)
        return service.tls == nil ? ServerTLS.MissingCertificate(ServerTLS.missing(options, service: "pop3s")) : service
    }

    let settings: POP3Settings
    let store: Maildir
    let tls: NIOSSLContext?
    let implicitTLS: Bool
    let logger = Logger(label: "inetkit.pop3")

    init(options: ServiceOptions, implicitTLS: Bool = false) throws(ConfigError) {
        settings = try POP3Settings(options: options)
        store = Maildir(root: try options.path("mail_dir", default: "mail"))
        tls = try ServerTLS.context(options, purpose: implicitTLS ? "POP3S" : "STLS")
        self.implicitTLS = implicitTLS
    }

    init(settings: POP3Settings, store: Maildir, tls: NIOSSLContext? = nil, implicitTLS: Bool = false) {
        self.settings = settings
        self.store = store
        self.tls = tls
        self.implicitTLS = implicitTLS && tls != nil
    }

    public func prepare() throws {
        try store.ensureRoot()
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let session = POP3Session(settings: settings, store: store, tlsAvailable: tls != nil, tlsActive: implicitTLS)
        if implicitTLS, let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
        try channel.pipeline.syncOperations.addHandler(LineProtocolHandler(session: session, effects: POP3Effects(store: store), tls: implicitTLS ? nil : tls, logger: logger))
    }
}

/// Runs a POP3 session's effects: the maildrop lock, and every file operation on the mail I/O
/// threads.
final class POP3Effects: LineEffectRunner {
    let store: Maildir

    init(store: Maildir) {
        self.store = store
    }

    func perform(_ effect: POP3Effect, on loop: any EventLoop) -> EventLoopFuture<POP3Outcome> {
        let store = self.store
        switch effect {
        case .delay(let seconds):
            return loop.scheduleTask(in: .seconds(clamping: seconds)) { POP3Outcome.delayed }.futureResult
        case .open(let folder):
            guard MailboxLocks.shared.lock(folder) else { return loop.makeSucceededFuture(.locked) }
            return Maildir.ioThreads.runIfActive(eventLoop: loop) { try store.messages(in: folder) }
                .map { POP3Outcome.opened($0) }
                .recover { _ in
                    MailboxLocks.shared.unlock(folder)
                    return .openFailed
                }
        case .read(let message):
            return Maildir.ioThreads.runIfActive(eventLoop: loop) { try MaildirReader(path: message.path) }
                .map { POP3Outcome.reader($0) }.recover { _ in .unreadable }
        case .nextChunk(let reader):
            return Maildir.ioThreads.runIfActive(eventLoop: loop) { try reader.next(ByteBufferAllocator()) }
                .map { POP3Outcome.chunk($0) }.recover { _ in .readFailed }
        case .remove(let doomed, let folder):
            return Maildir.ioThreads.runIfActive(eventLoop: loop) { () -> Bool in
                var allRemoved = true
                for message in doomed {
                    do { try store.remove(message) } catch { allRemoved = false }
                }
                return allRemoved
            }.always { _ in MailboxLocks.shared.unlock(folder) }
                .map { POP3Outcome.removed(allRemoved: $0) }.recover { _ in .removed(allRemoved: false) }
        case .unlock(let folder):
            MailboxLocks.shared.unlock(folder)
            return loop.makeSucceededFuture(.unlocked)
        }
    }

    func closed() {}
}
