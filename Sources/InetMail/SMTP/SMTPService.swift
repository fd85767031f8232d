#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import InetTLS
import Logging
import NIOConcurrencyHelpers
import InetLine
import NIOCore
import NIOPosix
import NIOSSL

/// The SMTP service's options (`services.smtp`).
struct SMTPSettings: Sendable {
    /// The name in the greeting, the EHLO reply and the Received: header.
    var hostname: String
    /// Domains whose mail is accepted; anything else is relaying and refused.
    var domains: [String]
    /// Known mailboxes (lower-case `local@domain`); nil accepts any local part of the domains.
    var mailboxes: Set<String>?
    var maxMessageBytes = 26_214_400
    var maxRecipients = 100
    var commandTimeout = 300.0
    var dataTimeout = 300.0
    var maxConnectionsPerAddress = 50
    var maxErrors = 10
    /// RFC 5321 4.5.3.1.6: a line is at most 1000 octets with its CRLF.
    static let maximumLineLength = 998

    static let keys: Set<String> = [
        "hostname", "domains", "mailboxes", "max_message_bytes", "max_recipients", "command_timeout", "data_timeout",
        "max_connections_per_address", "max_errors", "mail_dir",
    ]

    init(hostname: String, domains: [String], mailboxes: Set<String>? = nil) {
        self.hostname = hostname
        self.domains = domains
        self.mailboxes = mailboxes
    }

    init(options: ServiceOptions) throws(ConfigError) {
        hostname = try options.string("hostname") ?? systemHostName()
        var domains: [String] = []
        for domain in try options.reader?.stringList("domains") ?? ["inetkit.test", "localhost"] {
            let name = domain.lowercased().trimmingSuffix(".")
            guard MailAddress.isDomain(Substring(name)) else { throw options.error("domains", "'\(domain)' is not a domain name") }
            domains.append(name)
        }
        guard !domains.isEmpty else { throw options.error("domains", "at least one domain is needed") }
        self.domains = domains
        if let list = try options.reader?.stringList("mailboxes") {
            var keys = Set<String>()
            for entry in list {
                guard let address = MailAddress.parse(Substring(entry), utf8: true), address.isStorable else {
                    throw options.error("mailboxes", "'\(entry)' is not a mailbox address (local@domain)")
                }
                guard domains.contains(address.domain) else {
                    throw options.error("mailboxes", "'\(entry)' is not in one of the domains \(domains.joined(separator: ", "))")
                }
                keys.insert(address.key)
            }
            mailboxes = keys
        }
        let reader = options.reader
        if let value = try reader?.int("max_message_bytes", range: 1024...(1 << 31)) { maxMessageBytes = value }
        if let value = try reader?.int("max_recipients", range: 1...100_000) { maxRecipients = value }
        if let value = try reader?.seconds("command_timeout", range: 0.01...86_400) { commandTimeout = value }
        if let value = try reader?.seconds("data_timeout", range: 0.01...86_400) { dataTimeout = value }
        if let value = try reader?.int("max_connections_per_address", range: 1...1_000_000) { maxConnectionsPerAddress = value }
        if let value = try reader?.int("max_errors", range: 1...10_000) { maxErrors = value }
    }
}

/// SMTP on port 25 (RFC 5321): accepts mail for the configured domains and delivers each
/// message durably into its recipients' Maildirs before answering 250. Never relays.
public struct SMTPService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "smtp", wellKnownPort: 25, transports: [.tcp], optionKeys: SMTPSettings.keys.union(ServerTLS.keys),
        summary: "receives mail for local domains into Maildirs (RFC 5321), STARTTLS with a certificate"
    ) { options throws(ConfigError) in
        try SMTPService(options: options)
    }

    /// SMTPS (RFC 8314): the same sessions on port 465, TLS from the first byte, with the
    /// options of `services.smtp` wherever `services.smtps` does not give its own.
    public static let implicitTLSDescriptor = ServiceDescriptor(
        name: "smtps", wellKnownPort: 465, transports: [.tcp], optionKeys: SMTPSettings.keys.union(ServerTLS.keys),
        summary: "SMTP with TLS from the first byte (RFC 8314)", inheritsOptionsOf: "smtp"
    ) { options throws(ConfigError) in
        let service = try SMTPService(options: options, implicitTLS: true)
        return service.tls == nil ? ServerTLS.MissingCertificate(ServerTLS.missing(options, service: "smtps")) : service
    }

    let settings: SMTPSettings
    let store: Maildir
    let tls: NIOSSLContext?
    /// TLS before the greeting (SMTPS) rather than by STARTTLS.
    let implicitTLS: Bool
    let counter = AddressConnectionCounter()
    let logger = Logger(label: "inetkit.smtp")

    init(options: ServiceOptions, implicitTLS: Bool = false) throws(ConfigError) {
        settings = try SMTPSettings(options: options)
        store = Maildir(root: try options.path("mail_dir", default: "mail"))
        tls = try ServerTLS.context(options, purpose: implicitTLS ? "SMTPS" : "STARTTLS")
        self.implicitTLS = implicitTLS
    }

    init(settings: SMTPSettings, store: Maildir, tls: NIOSSLContext? = nil, implicitTLS: Bool = false) {
        self.settings = settings
        self.store = store
        self.tls = tls
        self.implicitTLS = implicitTLS && tls != nil
    }

    public func prepare() throws {
        try store.ensureRoot()
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        let session = SMTPSession(settings: settings, store: store, tlsAvailable: tls != nil, tlsActive: implicitTLS, logger: logger)
        if implicitTLS, let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
        try channel.pipeline.syncOperations.addHandler(LineProtocolHandler(
            session: session, effects: SMTPEffects(store: store), tls: implicitTLS ? nil : tls, logger: logger,
            admission: LineAdmission(counter: counter, limit: settings.maxConnectionsPerAddress)))
    }
}

/// Runs an SMTP session's effects on the mail I/O threads: every write, fsync and link of a
/// delivery happens there, never on the event loop.
final class SMTPEffects: LineEffectRunner {
    let store: Maildir

    init(store: Maildir) {
        self.store = store
    }

    func perform(_ effect: SMTPEffect, on loop: any EventLoop) -> EventLoopFuture<SMTPOutcome> {
        let store = self.store
        switch effect {
        case .spill(let existing, let folder, let bytes):
            return Maildir.ioThreads.runIfActive(eventLoop: loop) { () throws -> MaildirDelivery in
                let target = try existing ?? store.beginDelivery(into: folder)
                try target.write(bytes)
                return target
            }.map { SMTPOutcome.spilled($0) }.recover { _ in .spillFailed }
        case .deliver(let existing, let folders, let bytes):
            return Maildir.ioThreads.runIfActive(eventLoop: loop) { () throws -> String in
                guard let first = folders.first else { throw MaildirError("deliver", "(no recipients)", code: EINVAL) }
                let target = try existing ?? store.beginDelivery(into: first)
                do {
                    try target.write(bytes)
                    return try target.commit(into: folders)
                } catch {
                    target.discard()
                    throw error
                }
            }.map { SMTPOutcome.delivered($0) }.recover { .deliveryFailed("\($0)") }
        case .discard(let file):
            return Maildir.ioThreads.runIfActive(eventLoop: loop) { file.discard() }.map { .discarded }.recover { _ in .discarded }
        }
    }

    func closed() {}
}

extension Maildir {
    /// Creates the store's root folder if missing (at service start, so a bad `mail_dir` stops it).
    func ensureRoot() throws {
        try createDirectories(root, mode: 0o700)
        guard access(root, W_OK) == 0 else { throw MaildirError("write to", root) }
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
