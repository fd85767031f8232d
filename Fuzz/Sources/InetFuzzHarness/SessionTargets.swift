#if DEBUG
#if canImport(Glibc)
import Glibc
#endif
import InetCore
import Logging
import NIOCore
import NIOEmbedded
@testable import InetFTP
@testable import InetLine
@testable import InetMail

/// The SMTP, POP3 and FTP sessions fed arbitrary byte streams through the real
/// `LineProtocolHandler` on an `EmbeddedChannel`: line splitting, over-long lines, pipelining
/// while an effect is pending, the output bound (the channel turns unwritable between
/// chunks), timeouts and the connection's end. Effects are answered by a fake runner whose
/// outcomes (success, each kind of failure, now or after the next chunk) the input chooses;
/// FTP's read-only file requests run for real in the fuzz sandbox.
///
/// Input: one selector byte, then the client's bytes.
/// - bits 0-2: how the bytes arrive: all at once, or in chunks of 1, 7, 64, 512, 3, 2 or 5;
/// - bit 3: effects complete after the chunk that caused them, not at once;
/// - bit 4: the channel is unwritable during every other chunk;
/// - bits 5-7: which effects fail (a seed).
///
/// Properties: no trap, and everything written to the client has CRLF line ends only (no
/// bare CR or LF from echoed client input; POP3 may send a message's own bare CRs).
enum SessionTargets {
    static let all: [FuzzTarget] = [smtp, pop3, ftp]

    static let smtp = FuzzTarget(name: "smtp-session", summary: "an SMTP session (RFC 5321) fed a byte stream: commands, DATA, pipelining", maximumLength: 8192) { bytes in
        var settings = SMTPSettings(hostname: "mx.inetkit.test", domains: ["inetkit.test", "localhost"], mailboxes: nil)
        settings.maxMessageBytes = 4096
        settings.maxRecipients = 4
        let store = Maildir(root: FuzzSandbox.root + "/mail")
        return SessionDriver.run(bytes) { choices in
            let session = SMTPSession(settings: settings, store: store, tlsAvailable: choices.failing(1), logger: quiet)
            let runner = FuzzEffects<SMTPEffect, SMTPOutcome>(choices: choices) { effect, fail in
                switch effect {
                case .spill(let file, _, _):
                    return fail ? .spillFailed : .spilled(file ?? MaildirDelivery(store: store, fd: -1, temporaryPath: "/nonexistent/tmp/x", base: "x"))
                case .deliver:
                    return fail ? .deliveryFailed("fuzz") : .delivered("1700000000.M1P1.fuzz,S=10,W=11")
                case .discard:
                    return .discarded
                }
            }
            return (session, runner)
        }
    }

    static let pop3 = FuzzTarget(name: "pop3-session", summary: "a POP3 session (RFC 1939) fed a byte stream: login, listing, RETR/TOP, DELE, QUIT", maximumLength: 8192) { bytes in
        var settings = POP3Settings()
        let alice = MailAddress(localPart: "alice", domain: "inetkit.test")
        settings.users = [alice.key: .init(address: alice, password: "secret")]
        settings.authDelay = 0.5
        let store = Maildir(root: FuzzSandbox.root + "/mail")
        let file = FuzzSandbox.site + "/docs/a.txt"
        let messages = ["1700000000.M1P1.fuzz,S=16,W=17", "1700000001.M2P1.fuzz,S=40,W=43", "1700000002.M3P1.fuzz"].compactMap {
            MaildirMessage(path: file, name: $0)
        }
        // A message with what the encoder must handle: leading dots, bare LFs, a long line.
        let body = ByteBuffer(string: "Subject: x\n\n.leading dot\n..two\nbare\rcr\n" + String(repeating: "y", count: 1200) + "\n.\nend")
        // A bare CR inside a message's line is the message's own data (no POP3 client ends a
        // line there): only LFs are checked.
        return SessionDriver.run(bytes, bareCR: true) { choices in
            let session = POP3Session(settings: settings, store: store, tlsAvailable: choices.failing(1))
            var chunks = 0
            let runner = FuzzEffects<POP3Effect, POP3Outcome>(choices: choices) { effect, fail in
                switch effect {
                case .delay: return .delayed
                case .open: return fail ? (choices.failing(2) ? .locked : .openFailed) : .opened(messages)
                case .read:
                    guard !fail, let reader = try? MaildirReader(path: file) else { return .unreadable }
                    chunks = 0
                    return .reader(reader)
                case .nextChunk:
                    if fail { return .readFailed }
                    chunks += 1
                    return .chunk(chunks <= 2 ? body : nil)
                case .remove: return .removed(allRemoved: !fail)
                case .unlock: return .unlocked
                }
            }
            return (session, runner)
        }
    }

    static let ftp = FuzzTarget(name: "ftp-session", summary: "an FTP control connection (RFC 959) fed a byte stream: login, paths, PORT/PASV, transfers, ABOR", maximumLength: 8192) { bytes in
        var settings = FTPSettings()
        settings.anonymousRoot = FuzzSandbox.site
        settings.users = ["alice": FTPUser(name: "alice", password: "secret", home: FuzzSandbox.site, writable: true, anonymous: false)]
        settings.maxLoginFailures = 3
        return SessionDriver.run(bytes) { choices in
            let session = FTPSession(settings: settings, tlsAvailable: choices.failing(1), logger: quiet)
            var port = 30_000
            let runner = FuzzEffects<FTPEffect, FTPOutcome>(choices: choices) { effect, fail in
                switch effect {
                case .delay: return .delayed
                case .files(let request):
                    switch request {
                    case .home, .changeDirectory, .inspect, .listing, .renameSource:
                        // Read-only: for real, in the sandbox.
                        return .files(FTPFiles.perform(request))
                    case .delete(_, let path), .makeDirectory(_, let path), .removeDirectory(_, let path), .rename(_, _, let path):
                        // Changes are only pretended, so every run sees the same tree.
                        return .files(fail ? .failed(.operationFailed("fuzz")) : .changed(virtual: "/" + path))
                    }
                case .openPassive:
                    port += 1
                    return fail ? .passiveFailed : .passiveOpened(port: port)
                case .closePassive: return .passiveClosed
                case .startTransfer:
                    if fail { return choices.failing(2) ? .noDataConnection : .transferRefused(.unreadable) }
                    return .dataReady(FTPTransferReady(virtual: "/docs/a.txt", size: 16))
                case .moveData:
                    return fail ? .transferFailed(FTPTransferError(reply: "426 Connection closed; transfer aborted.\r\n")) : .transferred(bytes: 16)
                case .abortTransfer: return .aborted
                }
            }
            return (session, runner)
        }
    }

    static let quiet: Logger = {
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        return logger
    }()
}

/// The choices an input's selector byte makes, and the effects' failures drawn from its seed.
final class SessionChoices {
    let chunk: Int?
    let deferring: Bool
    let stalling: Bool
    private var seed: UInt32

    init(_ selector: UInt8) {
        chunk = [nil, 1, 7, 64, 512, 3, 2, 5][Int(selector & 7)]
        deferring = selector & 8 != 0
        stalling = selector & 16 != 0
        seed = UInt32(selector >> 5) &* 2_654_435_761 | 1
    }

    /// Fixed per input: whether option `n` is on.
    func failing(_ n: UInt32) -> Bool {
        (seed >> (n + 8)) & 1 == 1
    }

    /// The next effect fails about one time in four (never when the seed is 0).
    func nextFails() -> Bool {
        seed = seed &* 1_103_515_245 &+ 12345
        return (seed >> 16) & 3 == 0 && seed != 0
    }
}

struct FuzzEffectFailure: Error {}

/// A runner whose outcomes the input chooses; with `deferring`, they arrive only when the
/// driver settles them (after the next chunk), so commands pile up behind a pending effect.
final class FuzzEffects<Effect, Outcome>: LineEffectRunner {
    private let choices: SessionChoices
    private let decide: (Effect, Bool) -> Outcome
    private var deferred: [(EventLoopPromise<Outcome>, Outcome)] = []

    init(choices: SessionChoices, decide: @escaping (Effect, Bool) -> Outcome) {
        self.choices = choices
        self.decide = decide
    }

    func perform(_ effect: Effect, on loop: any EventLoop) -> EventLoopFuture<Outcome> {
        let outcome = decide(effect, choices.nextFails())
        let promise = loop.makePromise(of: Outcome.self)
        if choices.deferring {
            deferred.append((promise, outcome))
        } else {
            promise.succeed(outcome)
        }
        return promise.futureResult
    }

    /// Completes every deferred effect; true when there were any.
    func settle() -> Bool {
        let now = deferred
        deferred = []
        for (promise, outcome) in now { promise.succeed(outcome) }
        return !now.isEmpty
    }

    func closed() {}
}

enum SessionDriver {
    /// Feeds `bytes` (after the selector) to the session `make` returns, then lets every
    /// timeout fire and closes the connection; checks what was written.
    static func run<Session: LineSession>(
        _ bytes: [UInt8], bareCR: Bool = false, make: (SessionChoices) -> (Session, FuzzEffects<Session.Effect, Session.Outcome>)
    ) -> String? {
        var input = FuzzInput(bytes)
        let choices = SessionChoices(input.byte())
        let stream = input.rest()
        let (session, runner) = make(choices)
        let channel = EmbeddedChannel()
        let handler = LineProtocolHandler(session: session, effects: runner, tls: nil, logger: SessionTargets.quiet, maximumBuffered: 4096)
        guard (try? channel.pipeline.syncOperations.addHandler(handler)) != nil else { return nil }
        channel.localAddress = try? SocketAddress(ipAddress: "127.0.0.1", port: 21)
        _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40_000)).wait()
        var output: [UInt8] = []
        func collect() {
            while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { output += buffer.readableBytesView }
        }
        let size = choices.chunk ?? max(1, stream.count)
        var index = 0
        var chunkNumber = 0
        while index < stream.count, channel.isActive {
            let end = min(stream.count, index + size)
            if choices.stalling {
                channel.isWritable = chunkNumber % 2 == 0
                channel.pipeline.fireChannelWritabilityChanged()
            }
            _ = try? channel.writeInbound(ByteBuffer(bytes: stream[index..<end]))
            channel.pipeline.fireChannelReadComplete()
            _ = runner.settle()
            collect()
            index = end
            chunkNumber += 1
        }
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        // What is still pending completes, then the client goes quiet: the timeouts run.
        for _ in 0..<8 where runner.settle() { collect() }
        if channel.isActive {
            channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
            _ = runner.settle()
        }
        collect()
        _ = try? channel.finish(acceptAlreadyClosed: true)
        _ = runner.settle()
        return crlfProblem(output, bareCR: bareCR)
    }

    /// Where the output has a CR not followed by LF or an LF not preceded by CR.
    static func crlfProblem(_ output: [UInt8], bareCR: Bool) -> String? {
        for index in output.indices {
            switch output[index] {
            case 0x0D where !bareCR && (index + 1 == output.count || output[index + 1] != 0x0A),
                 0x0A where index == 0 || output[index - 1] != 0x0D:
                let from = max(0, index - 60)
                return "bare CR or LF at \(index) of the output: \(String(decoding: output[from..<min(output.count, index + 20)], as: UTF8.self).debugDescription)"
            default:
                continue
            }
        }
        return nil
    }
}
#endif
