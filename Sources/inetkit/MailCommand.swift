import ArgumentParser
import Foundation
import InetCore
import InetMail
import InetSimple
import NIOConcurrencyHelpers

struct MailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mail",
        abstract: "Send mail over SMTP; list, read and delete it over POP3.",
        subcommands: [MailSendCommand.self, MailListCommand.self, MailReadCommand.self, MailDeleteCommand.self, MailWaitCommand.self])
}

/// `host`, `host:port`, `[v6]:port` (the simple clients' target syntax), with the service's
/// default port under the port rule; 127.0.0.1 when not given.
enum ServerAddress {
    static func parse(_ text: String?, wellKnown: Int, portOffset: Int?) throws -> Target {
        let defaultPort = PortPlan.defaultPort(wellKnown: wellKnown, explicitOffset: portOffset)
        guard let text, !text.isEmpty else { return Target(host: "127.0.0.1", port: defaultPort) }
        do {
            return try Target.parse(text, defaultPort: defaultPort)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

struct MailServerOptions: ParsableArguments {
    @Option(name: .long, help: "Server as HOST[:PORT] (default 127.0.0.1 on the service's port under the port rule).")
    var server: String?

    @Option(name: .long, help: "Port offset for a server without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    @Option(name: .long, help: "Seconds without progress before giving up.")
    var timeout = 30.0

    @Flag(name: .long, help: "Show the dialogue with the server on standard error.")
    var trace = false

    var tracer: (@Sendable (String) -> Void)? {
        guard trace else { return nil }
        return { @Sendable line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }
}

struct MailSendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message over SMTP: inetkit mail send --from a@x.test --to carol@inetkit.test --subject Hi --body Hello")

    @Option(name: .long, help: "Envelope sender and From: address.")
    var from: String

    @Option(name: .long, help: "Recipient; repeat for several.")
    var to: [String]

    @Option(name: .long, help: "Subject: header.")
    var subject: String?

    @Option(name: .long, help: "The message body.")
    var body: String?

    @Option(name: .long, help: "Send this file's content as the body ('-' for standard input).")
    var file: String?

    @Flag(name: .long, help: "Send --file as the whole message (it carries its own headers).")
    var raw = false

    @Option(name: .long, help: "Messages to send in all (a load test).")
    var count = 1

    @Option(name: .long, help: "SMTP sessions at once; the messages are spread over them.")
    var concurrency = 1

    @OptionGroup var options: MailServerOptions

    func validate() throws {
        guard !to.isEmpty else { throw ValidationError("give at least one --to") }
        guard body == nil || file == nil else { throw ValidationError("give --body or --file, not both") }
        guard !raw || file != nil else { throw ValidationError("--raw needs --file") }
        guard count >= 1, concurrency >= 1, concurrency <= 10_000 else { throw ValidationError("--count and --concurrency must be positive") }
    }

    func run() async throws {
        let server = try ServerAddress.parse(options.server, wellKnown: 25, portOffset: options.portOffset)
        var content: [UInt8]
        if let file {
            guard let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            content = Array(data)
        } else {
            content = Array((body ?? "").utf8)
        }
        let message = raw ? OutgoingMail(from: from, to: to, content: content)
            : OutgoingMail.compose(from: from, to: to, subject: subject, body: content)
        let client = SMTPClient(host: server.host, port: server.port, timeout: options.timeout)
        if count == 1 {
            do {
                try await client.send([message], trace: options.tracer)
            } catch {
                FileHandle.standardError.write(Data("inetkit mail send: \(error)\n".utf8))
                throw ExitCode(1)
            }
            print("sent to \(to.joined(separator: ", ")) via \(server.host):\(server.port)")
            return
        }
        let sessions = min(concurrency, count)
        let started = DispatchTime.now()
        let failures = NIOLockedValueBox<[String]>([])
        await withTaskGroup(of: Void.self) { group in
            for session in 0..<sessions {
                let share = count / sessions + (session < count % sessions ? 1 : 0)
                group.addTask {
                    do {
                        try await client.send(Array(repeating: message, count: share))
                    } catch {
                        failures.withLockedValue { $0.append("\(error)") }
                    }
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let failed = failures.withLockedValue { $0 }
        print(String(format: "%d messages over %d sessions in %.2f s: %.1f messages/s, %d sessions failed",
                     count, sessions, seconds, Double(count) / seconds, failed.count))
        if let first = failed.first {
            FileHandle.standardError.write(Data("inetkit mail send: \(first)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct POP3Options: ParsableArguments {
    @Option(name: .long, help: "Mailbox address, e.g. carol@inetkit.test.")
    var user: String

    @Option(name: .long, help: "Password.")
    var password: String

    @OptionGroup var server: MailServerOptions

    func session<Result: Sendable>(_ body: (POP3Client) async throws -> Result) async throws -> Result {
        let address = try ServerAddress.parse(server.server, wellKnown: 110, portOffset: server.portOffset)
        do {
            return try await POP3Client.session(host: address.host, port: address.port, user: user, password: password,
                                                timeout: server.timeout, trace: server.tracer, body)
        } catch let error as MailClientError {
            FileHandle.standardError.write(Data("inetkit mail: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct MailListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a mailbox over POP3: number, size, sender, subject.")

    @OptionGroup var pop3: POP3Options

    func run() async throws {
        let rows = try await pop3.session { client -> [(POP3Listing, String, String)] in
            var rows: [(POP3Listing, String, String)] = []
            for listing in try await client.list() {
                let head = try await client.top(listing.number, lines: 0)
                rows.append((listing, POP3Client.header("From", in: head) ?? "", POP3Client.header("Subject", in: head) ?? ""))
            }
            return rows
        }
        if rows.isEmpty { print("no messages") }
        for (listing, from, subject) in rows {
            print("\(String(listing.number).padding(toLength: 4, withPad: " ", startingAt: 0)) \(String(listing.size).padding(toLength: 8, withPad: " ", startingAt: 0)) \(from.prefix(32).padding(toLength: 32, withPad: " ", startingAt: 0)) \(subject)")
        }
    }
}

struct MailReadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "read", abstract: "Print messages over POP3, by number.")

    @Argument(help: "Message numbers (see 'inetkit mail list').")
    var numbers: [Int]

    @OptionGroup var pop3: POP3Options

    func run() async throws {
        let messages = try await pop3.session { client in
            var all: [[UInt8]] = []
            for number in numbers { all.append(try await client.retrieve(number)) }
            return all
        }
        for message in messages {
            FileHandle.standardOutput.write(Data(message))
        }
    }
}

struct MailDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete messages over POP3, by number.")

    @Argument(help: "Message numbers (see 'inetkit mail list').")
    var numbers: [Int]

    @OptionGroup var pop3: POP3Options

    func run() async throws {
        try await pop3.session { client in
            for number in numbers { try await client.delete(number) }
        }
        print("deleted \(numbers.count) message\(numbers.count == 1 ? "" : "s")")
    }
}

/// `inetkit mail wait`: for scripts, waits until the host has mail for an address (read from its
/// Maildir, so no server address is needed) and prints it.
struct MailWaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait until the host's mail store has a message for an address; print its From, To, Subject and file.",
        discussion: "Exit status 0 with the message, 1 when none came in time. A message already there counts (use --new for only those that arrive after the start).")

    @Option(name: .long, help: "The recipient (its mailbox, or part of the To or Cc field).")
    var to: String

    @Option(name: .long, help: "Only a message whose Subject contains this.")
    var subject: String?

    @Option(name: .long, help: "Seconds to wait.")
    var timeout: Double = 10

    @Flag(name: .long, help: "Only a message that arrives after the command starts.")
    var new = false

    @Flag(name: .long, help: "Print the message's summary as JSON.")
    var json = false

    @Option(name: .long, help: "The host's config file (for its data_dir and services.smtp.mail_dir).")
    var config: String?

    @Option(name: .long, help: "The host's data folder (default: the config's data_dir, else ./inetkit-data).")
    var dataDir: String?

    func validate() throws {
        guard timeout >= 0, timeout <= 86_400 else { throw ValidationError("--timeout must be 0 to 86400 seconds") }
    }

    func run() throws {
        var root = try EventsCommand.dataFolder(config: nil, dataDir: dataDir) + "/mail"
        if let config {
            // services.smtp.mail_dir, relative to the config's (or --data-dir's) data_dir.
            do {
                var loaded = try HostSetup.loadConfigAndText(config).0
                if let dataDir { loaded.dataDirectory = dataDir }
                root = try HostPlan.mailDirectory(loaded)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        let store = Maildir(root: root)
        let wanted = to.lowercased()
        let started = Date()
        let seen = new ? Set(store.allMessages(limit: 100_000).map(\.message.uniqueID)) : []
        while true {
            for (mailbox, message) in store.allMessages(limit: 10_000) where !seen.contains(message.uniqueID) {
                guard let head = FileManager.default.contents(atPath: message.path).map({ Array($0.prefix(65_536)) }) else { continue }
                let fields = MailMessageView.headerFields(head[...])
                func field(_ name: String) -> String { fields.first { $0.name.lowercased() == name }?.value ?? "" }
                let matches = mailbox.lowercased().contains(wanted) || field("to").lowercased().contains(wanted) || field("cc").lowercased().contains(wanted)
                guard matches, subject.map({ field("subject").lowercased().contains($0.lowercased()) }) ?? true else { continue }
                if json {
                    let members = [("id", message.uniqueID), ("mailbox", mailbox), ("from", field("from")), ("to", field("to")),
                                   ("subject", field("subject")), ("file", message.path)]
                    print("{" + members.map { "\(JSON.quote($0.0)):\(JSON.quote($0.1))" }.joined(separator: ",") + ",\"size\":\(message.size)}")
                } else {
                    print("From: \(field("from"))\nTo: \(field("to"))\nSubject: \(field("subject"))\nFile: \(message.path)")
                }
                return
            }
            if Date().timeIntervalSince(started) >= timeout {
                FileHandle.standardError.write(Data("inetkit mail wait: no message for \(to) within \(timeout) s (mail store \(root))\n".utf8))
                throw ExitCode(1)
            }
            usleep(100_000)
        }
    }
}
