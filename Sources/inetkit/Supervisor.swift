import CInetSupport
import InetCore
import Logging
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The process `inetkit serve` is by default (`isolation: workers`): it reads the config,
/// binds every listener (as root where the ports need it), and starts one worker process per
/// group of services (`inetkit worker`, by systemd's socket-activation convention), then only
/// watches them. It parses no protocol. A worker that dies is started again at once on the
/// same sockets, so connections in the listen backlog and datagrams in the socket buffers are
/// served by its successor; one that keeps dying is backed off. SIGHUP starts a new generation
/// of workers from the re-read config and retires the old one once the new is ready; SIGUSR2
/// re-executes the binary on disk with the sockets (an upgrade in place); SIGTERM/SIGINT drain
/// the workers and end with the session summary.
///
/// Single-threaded: one poll(2) loop over a self-pipe of signals, the workers' output pipes
/// and their notification sockets.
final class Supervisor {
    struct Options {
        var configPath: String?
        var overrides: HostOverrides
        var portsFile: String?
        var logLevel: String?
        var logFormat: String?
        var bindArguments: [String]
    }

    /// One worker process.
    final class Worker {
        let group: WorkerGroup
        let generation: Int
        let pid: pid_t
        var output: Int32
        var notify: Int32
        let notifyName: String
        let started: Double
        var ready = false
        /// A worker of a new generation: built its services and waits for `go` before it reads.
        var prepared = false
        var listenersClosed = false
        /// The write end of its go pipe (new generations only).
        var go: Int32 = -1
        var askedToStop = false
        var exited = false
        /// The last bytes it wrote (its last lines are read from here when it dies).
        var tail: [UInt8] = []
        var partial: [UInt8] = []

        /// Its last lines (at most `count`, each cut to 512 bytes).
        func lastLines(_ count: Int) -> [String] {
            var lines = tail.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
            // The first may be the end of a line cut by the tail's bound.
            if tail.count >= Supervisor.keptTail, !lines.isEmpty { lines.removeFirst() }
            return lines.suffix(count).map { String(decoding: $0.prefix(512), as: UTF8.self) }
        }

        init(group: WorkerGroup, generation: Int, pid: pid_t, output: Int32, notify: Int32, notifyName: String, started: Double) {
            self.group = group
            self.generation = generation
            self.pid = pid
            self.output = output
            self.notify = notify
            self.notifyName = notifyName
            self.started = started
        }

        var label: String { "\(group.name) (\(group.services.joined(separator: ",")))" }
    }

    /// A config in force (or being brought in by a reload): its text, plan, sockets and groups.
    final class Generation {
        let number: Int
        let config: HostConfig
        let plan: HostPlan
        var sockets: [ListeningSocket]
        let groups: [WorkerGroup]
        /// The config text as a memfd every worker of this generation reads.
        let configDescriptor: Int32

        init(number: Int, config: HostConfig, plan: HostPlan, sockets: [ListeningSocket], groups: [WorkerGroup], configDescriptor: Int32) {
            self.number = number
            self.config = config
            self.plan = plan
            self.sockets = sockets
            self.groups = groups
            self.configDescriptor = configDescriptor
        }

        func sockets(for group: WorkerGroup) -> [ListeningSocket] {
            group.services.flatMap { service in sockets.filter { $0.service == service } }
        }
    }

    static let signals: [Int32] = [SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR2]
    /// How long a new generation has to report READY before a reload is abandoned.
    static let readyTimeout = 30.0
    /// A worker that lived this long before it died starts its crash count afresh.
    static let stableAfter = 10.0
    /// Crashes in a row restarted at once; after them each restart waits 0.25 s, 0.5 s, … up to `restart_backoff_max` (30 s).
    static let immediateRestarts = 3
    static let keptLines = 20
    /// Bytes of each worker's output kept for its last lines.
    static let keptTail = 8192
    static let maximumLine = 8192

    let options: Options
    let logger: Logger
    let region: SharedRegion
    let account: RunAccount?
    private(set) var current: Generation
    private var next: Generation?
    private var nextDeadline = 0.0
    /// How far a reload has come: its workers prepare, the old ones stop reading, then the new
    /// ones start reading (one generation reads a socket at a time).
    private enum Handover { case preparing, closing, starting }
    private var handover = Handover.preparing
    private var reloadQueued = false
    private var workers: [Worker] = []
    private var crashes: [String: Int] = [:]
    private var restartAt: [String: Double] = [:]
    private var announced = false
    /// Services the last reload stopped: listed as `stopped` (so the new SNMP agent reports
    /// them) until the next worker starts.
    private var stoppedByReload: Set<String> = []
    private var stopping = false
    private var stopDeadline = 0.0
    private var killedAll = false
    private var exitCode: Int32 = 0
    private var notifySequence = 0
    private var signalRead: Int32 = -1
    private var signalWrite: Int32 = -1
    private var upgradeHelpers: Set<pid_t> = []
    private var outputBuffer = [UInt8](repeating: 0, count: 65_536)
    private let executable: String
    /// The event journal (the supervisor writes what every worker emits).
    private var journal: EventJournal?
    /// The host's own events (start, worker exits, reloads, stop).
    private let hostEvents = HostEvents()

    init(options: Options, config: HostConfig, configText: String, plan: HostPlan, sockets: [ListeningSocket], region: SharedRegion,
         account: RunAccount?, logger: Logger, generation: Int = 1, configDescriptor: Int32? = nil) throws {
        self.options = options
        self.logger = logger
        self.region = region
        self.account = account
        executable = CommandLine.arguments.first ?? "inetkit"
        let groups = WorkerGroups.plan(
            config: config.workers, running: plan.services.filter(\.enabled).map(\.descriptor.name), catalog: serviceCatalog.map(\.name))
        current = Generation(number: generation, config: config, plan: plan, sockets: sockets, groups: groups,
                             configDescriptor: try configDescriptor ?? Self.configMemfd(configText))
    }

    // MARK: - Starting

    /// Binds the sockets of a plan and makes the region: everything before the first worker.
    static func prepare(options: Options, config: HostConfig, plan: HostPlan, logger: Logger) throws -> (SharedRegion, [ListeningSocket], RunAccount?) {
        let events = config.events
        let folder = plan.dataDirectory.hasSuffix("/") ? plan.dataDirectory + "events" : plan.dataDirectory + "/events"
        let region = try SharedRegion.create(eventSlots: events.enabled ? events.ringSize : 0, eventBytes: events.maxEventBytes,
                                             lastEventID: EventJournal.lastID(in: folder))
        var entries: [(service: String, transport: Transport)] = []
        for descriptor in serviceCatalog {
            for transport in descriptor.transports { entries.append((descriptor.name, transport)) }
        }
        try region.ensureEntries(entries)
        let account = try HostSetup.runAccount(config, logger: logger)
        let sockets = try HostSetup.bindAll(plan, udpSockets: HostSetup.udpSocketsPerAddress, logger: logger)
        HostSetup.announceDashboardToken(plan, logger: logger)
        if let account { HostSetup.prepareDataDirectory(plan, for: account, logger: logger) }
        return (region, sockets, account)
    }

    /// Runs until every worker has stopped after SIGTERM/SIGINT; returns the exit status.
    func run() -> Int32 {
        setUpSignals()
        if let account {
            logger.notice("workers run as \(account)")
        }
        startJournal()
        hostEvents.emit(service: "inetkit", kind: "host.start") { body in
            body.int("pid", Int(getpid()))
            body.string("isolation", "workers")
            body.strings("services", current.plan.services.filter(\.enabled).map(\.descriptor.name))
            body.int("workers", current.groups.count)
        }
        for group in current.groups { spawn(group, generation: current) }
        publish()
        loop()
        stopEvents()
        return exitCode
    }

    /// The last event, then the journal's last write.
    private func stopEvents() {
        hostEvents.emit(service: "inetkit", kind: "host.stop") { body in
            body.int("exit_status", Int(exitCode))
        }
        guard let journal else { return }
        journal.stop()
        Self.writeReport(dataDirectory: current.plan.dataDirectory, logger: logger)
    }

    /// The session report, from the journal just closed.
    static func writeReport(dataDirectory: String, logger: Logger) {
        do {
            let (paths, _) = try SessionReport.write(dataDirectory: dataDirectory, budget: SessionReport.shutdownJournalBytes)
            logger.notice("session report written", metadata: ["files": "\(paths.joined(separator: " "))"])
        } catch {
            logger.error("cannot write the session report", metadata: ["error": "\(error)"])
        }
    }

    private func startJournal() {
        hostEvents.attach(ring: region.events, settings: current.config.events)
        guard let ring = region.events, current.config.events.journal else { return }
        let settings = current.config.events
        let plan = current.plan
        let folder = plan.dataDirectory.hasSuffix("/") ? plan.dataDirectory + "events" : plan.dataDirectory + "/events"
        let writer = EventJournal(ring: ring, folder: folder, rotateBytes: settings.journalRotateBytes, maxBytes: settings.journalMaxBytes, logger: logger)
        do {
            // After what the journal already holds (an upgrade's new image goes on from there).
            try writer.start(after: min(ring.lastID, max(EventJournal.lastID(in: folder), ring.lastID - ring.slotCount)))
            journal = writer
        } catch {
            logger.error("the event journal cannot be written: events stay in memory only", metadata: ["error": "\(error)"])
        }
    }

    private func setUpSignals() {
        var fds: [Int32] = [-1, -1]
        guard inetkit_pipe(&fds, O_CLOEXEC | O_NONBLOCK) == 0 else { fail("pipe2: \(String(cString: strerror(errno)))", code: 1) }
        signalRead = fds[0]
        signalWrite = fds[1]
        signal(SIGPIPE, SIG_IGN)
        var list = Self.signals
        guard inetkit_forward_signals(signalWrite, &list, Int32(list.count)) == 0 else {
            fail("sigaction: \(String(cString: strerror(errno)))", code: 1)
        }
    }

    // MARK: - The loop

    private func loop() {
        while true {
            var polled: [pollfd] = [pollfd(fd: signalRead, events: Int16(POLLIN), revents: 0)]
            var owners: [(Worker, Bool)] = []
            for worker in workers {
                if worker.output >= 0 {
                    polled.append(pollfd(fd: worker.output, events: Int16(POLLIN), revents: 0))
                    owners.append((worker, true))
                }
                if worker.notify >= 0 {
                    polled.append(pollfd(fd: worker.notify, events: Int16(POLLIN), revents: 0))
                    owners.append((worker, false))
                }
            }
            let timeout = pollTimeout()
            let count = poll(&polled, nfds_t(polled.count), timeout)
            if count < 0, errno != EINTR { logger.error("poll failed", metadata: ["error": "\(String(cString: strerror(errno)))"]) }
            if count > 0 {
                for (index, entry) in polled.enumerated() where entry.revents != 0 {
                    if index == 0 { continue }
                    let (worker, isOutput) = owners[index - 1]
                    if isOutput { readOutput(worker) } else { readNotifications(worker) }
                }
                if polled[0].revents != 0 { handleSignals() }
            }
            reap()
            runTimers()
            if stopping && workers.isEmpty {
                finish()
                return
            }
        }
    }

    private func pollTimeout() -> Int32 {
        var deadlines: [Double] = Array(restartAt.values)
        if next != nil { deadlines.append(nextDeadline) }
        if stopping { deadlines.append(stopDeadline) }
        guard let soonest = deadlines.min() else { return 1000 }
        let milliseconds = (soonest - Self.now()) * 1000
        return Int32(max(0, min(1000, milliseconds.rounded(.up))))
    }

    private func handleSignals() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while true {
            let count = read(signalRead, &bytes, bytes.count)
            guard count > 0 else { break }
            for byte in bytes[0..<count] {
                switch Int32(byte) {
                case SIGCHLD: break  // reaped after every wake-up
                case SIGHUP: if !stopping { beginReload(reason: "SIGHUP") }
                case SIGUSR2: if !stopping { upgrade() }
                case SIGTERM, SIGINT: beginStop(signal: Int32(byte))
                default: break
                }
            }
        }
    }

    private func runTimers() {
        let now = Self.now()
        for (name, time) in restartAt where time <= now {
            restartAt[name] = nil
            if stopping { continue }
            if let group = current.groups.first(where: { $0.name == name }) {
                spawn(group, generation: current)
                publish()
            }
        }
        if next != nil, now >= nextDeadline {
            switch handover {
            case .preparing:
                abandonReload("the new workers did not report ready within \(Int(Self.readyTimeout)) s")
            case .closing:
                logger.warning("old workers did not report their listeners closed in time: the new ones start anyway")
                releaseNewGeneration()
            case .starting:
                logger.error("new workers did not report ready in time; they stay, and are restarted if they die")
                commitReload()
            }
        }
        if stopping, !killedAll, now >= stopDeadline {
            killedAll = true
            for worker in workers where !worker.exited {
                logger.warning("worker did not stop in time: killed", metadata: ["worker": "\(worker.label)", "pid": "\(worker.pid)"])
                kill(worker.pid, SIGKILL)
            }
        }
    }

    // MARK: - Workers

    @discardableResult
    private func spawn(_ group: WorkerGroup, generation: Generation, handover: Bool = false) -> Worker? {
        if next == nil { stoppedByReload = [] }
        let sockets = generation.sockets(for: group)
        notifySequence += 1
        let notifyName = "inetkit-\(getpid())-\(current.number)-\(notifySequence)-\(UInt32.random(in: 0...UInt32.max))"
        let notify = Self.notifySocket(notifyName)
        var pipeFDs: [Int32] = [-1, -1]
        guard notify >= 0, inetkit_pipe(&pipeFDs, O_CLOEXEC) == 0 else {
            logger.error("cannot start a worker", metadata: ["worker": "\(group.name)", "error": "\(String(cString: strerror(errno)))"])
            if notify >= 0 { close(notify) }
            scheduleRestart(group, delay: 1)
            return nil
        }
        let readEnd = pipeFDs[0]
        let writeEnd = Self.moveHigh(pipeFDs[1])
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)

        var fds = sockets.map(\.descriptor)
        let regionTarget = 3 + fds.count
        fds.append(region.descriptor)
        fds.append(generation.configDescriptor)
        var logTarget: Int32?
        if let logFile = Self.logFile {
            logTarget = 3 + Int32(fds.count)
            fds.append(logFile)
        }
        var goRead: Int32 = -1
        var goWrite: Int32 = -1
        if handover {
            var goFDs: [Int32] = [-1, -1]
            if inetkit_pipe(&goFDs, O_CLOEXEC) == 0 {
                goRead = Self.moveHigh(goFDs[0])
                goWrite = goFDs[1]
                fds.append(goRead)
            }
        }

        var environment: [String] = ["LISTEN_PID=" + String(repeating: "0", count: 20)]
        for (key, value) in ProcessInfo.processInfo.environment
        where !key.hasPrefix("LISTEN_") && !key.hasPrefix("INETKIT_") && key != "NOTIFY_SOCKET" {
            environment.append("\(key)=\(value)")
        }
        // Swift's crash backtracer makes a dying worker linger for seconds (and has been seen to
        // hang after a SIGSEGV): a worker dies at once and is restarted at once instead; the
        // supervisor logs the signal. SWIFT_BACKTRACE set by the user wins.
        if ProcessInfo.processInfo.environment["SWIFT_BACKTRACE"] == nil { environment.append("SWIFT_BACKTRACE=enable=no") }
        environment += [
            "LISTEN_FDS=\(sockets.count)",
            "LISTEN_FDNAMES=\(sockets.map(\.service).joined(separator: ":"))",
            "INETKIT_REGION_FD=\(regionTarget)",
            "INETKIT_CONFIG_FD=\(regionTarget + 1)",
            "INETKIT_CONFIG_NAME=\(generation.config.file)",
            "INETKIT_SUPERVISED=1",
            "INETKIT_WORKER=\(group.name)",
            goRead >= 0 ? "INETKIT_GO_FD=\(Int(regionTarget) + 2 + (logTarget == nil ? 0 : 1))" : "INETKIT_GO_FD_UNUSED=1",
            logTarget.map { "INETKIT_LOG_FD=\($0)" } ?? "INETKIT_LOG_FD_UNUSED=1",
            "NOTIFY_SOCKET=@\(notifyName)",
        ]
        var arguments = [executable, "worker", "--services", group.services.joined(separator: ","),
                         "--port-offset", "\(generation.plan.portPlan.offset)"]
        for address in options.bindArguments { arguments += ["--bind", address] }
        if let level = options.logLevel { arguments += ["--log-level", level] }
        if let format = options.logFormat { arguments += ["--log-format", format] }

        let pid = Self.spawnProcess(Self.runningBinary(), arguments: arguments, environment: environment, fds: fds, output: writeEnd,
                                    account: account)
        let spawnError = errno
        close(writeEnd)
        if goRead >= 0 { close(goRead) }
        guard pid > 0 else {
            if goWrite >= 0 { close(goWrite) }
            close(readEnd)
            close(notify)
            logger.error("cannot start a worker", metadata: ["worker": "\(group.name)", "error": "\(String(cString: strerror(spawnError)))"])
            scheduleRestart(group, delay: 1)
            return nil
        }
        let worker = Worker(group: group, generation: generation.number, pid: pid, output: readEnd, notify: notify,
                            notifyName: notifyName, started: Self.now())
        worker.go = goWrite
        workers.append(worker)
        logger.info("worker started", metadata: [
            "worker": "\(group.name)", "services": "\(group.services.joined(separator: ","))", "pid": "\(pid)",
            "generation": "\(generation.number)", "sockets": "\(sockets.count)",
        ])
        return worker
    }

    /// The binary this process runs: its path on disk (so `ps` shows `inetkit`), or
    /// /proc/self/exe when that file was replaced since (restarts run the same build as the
    /// supervisor; SIGUSR2 is how a new build comes in).
    static func runningBinary() -> String {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"),
              path.hasPrefix("/"), !path.hasSuffix(" (deleted)") else { return "/proc/self/exe" }
        return path
    }

    static func spawnProcess(_ path: String, arguments: [String], environment: [String], fds: [Int32], output: Int32,
                             account: RunAccount? = nil) -> pid_t {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        let listenIndex = Int32(environment.firstIndex { $0.hasPrefix("LISTEN_PID=") } ?? -1)
        return fds.withUnsafeBufferPointer { fdBuffer in
            inetkit_spawn(path, &argv, &envp, fdBuffer.baseAddress, Int32(fds.count), output, listenIndex, 0,
                          account.map { Int64($0.uid) } ?? -1, account.map { Int64($0.gid) } ?? -1)
        }
    }

    /// An abstract-namespace datagram socket a worker sends `READY=1` to (sd_notify's protocol).
    static func notifySocket(_ name: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = Glibc.sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = [UInt8(0)] + Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() where index < raw.count { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        guard bound == 0 else {
            close(fd)
            return -1
        }
        var size: Int32 = 1 << 16
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        guard inetkit_pass_credentials(fd) == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    /// Moves a descriptor to 256 or above (clear of the 3, 4, … a worker receives).
    /// When standard error is a regular file: a descriptor of it that every worker gets
    /// (`INETKIT_LOG_FD`) and writes its log lines to itself, as nginx's workers write their
    /// access log, instead of through its pipe and this process (a pipe read, a copy and a
    /// second write per batch of lines; a busy HTTP worker's access log was the supervisor's
    /// main work). Writes to one open file are whole and never overlap (Linux serialises the
    /// offset of a shared open file), so the lines of every process stay whole. Not for a pipe
    /// or a socket (journald): there a write of more than PIPE_BUF bytes may interleave. A
    /// worker's standard error stays its pipe: what the runtime says as a worker dies still
    /// comes here, into the `last_lines` of its exit.
    static let logFile: Int32? = {
        var info = stat()
        guard fstat(2, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        let moved = fcntl(2, F_DUPFD_CLOEXEC, SocketBinder.minimumDescriptor)
        return moved >= 0 ? moved : nil
    }()

    static func moveHigh(_ fd: Int32) -> Int32 {
        guard fd >= 0, fd < SocketBinder.minimumDescriptor else { return fd }
        let moved = fcntl(fd, F_DUPFD_CLOEXEC, SocketBinder.minimumDescriptor)
        guard moved >= 0 else { return fd }
        close(fd)
        return moved
    }

    static func configMemfd(_ text: String) throws -> Int32 {
        let fd = moveHigh(inetkit_memfd("inetkit-config"))
        guard fd >= 0 else { throw RegionError(message: "memfd_create: \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            written += count
        }
        return fd
    }

    /// Relays what a worker wrote: at most `chunks` reads of 64 KiB per wake-up, so a worker
    /// that logs without pause cannot keep the loop from signals and restarts. Whole lines go
    /// on in one piece per read (up to the read's last line end; the rest waits for its end),
    /// so two workers' lines never interleave; a line longer than `maximumLine` goes as it is.
    private func readOutput(_ worker: Worker, chunks: Int = 16) {
        var left = chunks
        while worker.output >= 0, left > 0 {
            left -= 1
            let count = read(worker.output, &outputBuffer, outputBuffer.count)
            if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
            if count <= 0 {
                close(worker.output)
                worker.output = -1
                if !worker.partial.isEmpty {
                    worker.partial.append(UInt8(ascii: "\n"))
                    relay(worker, worker.partial[...])
                }
                worker.partial = []
                return
            }
            guard let lastEnd = outputBuffer[0..<count].lastIndex(of: UInt8(ascii: "\n")) else {
                worker.partial += outputBuffer[0..<count]
                if worker.partial.count > Self.maximumLine {
                    worker.partial.append(UInt8(ascii: "\n"))
                    relay(worker, worker.partial[...])
                    worker.partial = []
                }
                continue
            }
            if worker.partial.isEmpty {
                relay(worker, outputBuffer[0...lastEnd])
            } else {
                worker.partial += outputBuffer[0...lastEnd]
                relay(worker, worker.partial[...])
                worker.partial = []
            }
            if lastEnd + 1 < count { worker.partial += outputBuffer[(lastEnd + 1)..<count] }
        }
    }

    /// Relays whole lines of a worker's log to standard error, through the log sink as the
    /// supervisor's own lines (a stalled destination costs dropped, counted lines, never a
    /// supervisor that stops handling signals and restarts), and keeps the tail of what it
    /// said (the lines shown when it dies).
    private func relay(_ worker: Worker, _ lines: ArraySlice<UInt8>) {
        lines.withUnsafeBytes { LogSink.standardError.append($0) }
        worker.tail += lines.suffix(Self.keptTail)
        if worker.tail.count > 2 * Self.keptTail { worker.tail.removeFirst(worker.tail.count - Self.keptTail) }
    }

    private func readNotifications(_ worker: Worker) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while worker.notify >= 0 {
            var sender: pid_t = -1
            let count = inetkit_recv_from_pid(worker.notify, &buffer, buffer.count, &sender)
            guard count > 0 else { return }
            // The socket's name is public (abstract namespace): only the worker itself counts.
            guard sender == worker.pid else {
                logger.warning("notification from another process ignored", metadata: ["worker": "\(worker.label)", "sender_pid": "\(sender)"])
                continue
            }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            for line in text.split(separator: "\n") {
                switch line {
                case "READY=1" where !worker.ready:
                    worker.ready = true
                    workerReady(worker)
                case "X_INETKIT_PREPARED=1" where !worker.prepared:
                    worker.prepared = true
                    advanceHandover()
                case "X_INETKIT_LISTENERS_CLOSED=1" where !worker.listenersClosed:
                    worker.listenersClosed = true
                    advanceHandover()
                default:
                    break
                }
            }
        }
    }

    private func workerReady(_ worker: Worker) {
        logger.debug("worker ready", metadata: ["worker": "\(worker.label)", "pid": "\(worker.pid)"])
        if let next, worker.generation == next.number {
            if handover == .starting, allReady(next) { commitReload() }
            return
        }
        guard worker.generation == current.number else { return }
        publish()
        if !announced, allReady(current) {
            announced = true
            announce()
        }
    }

    private func allReady(_ generation: Generation) -> Bool {
        generation.groups.allSatisfy { group in
            workers.contains { $0.generation == generation.number && $0.group == group && $0.ready && !$0.exited }
        }
    }

    /// The first time every worker is ready: the table, the ports file, READY=1.
    private func announce() {
        let listeners = portsListeners(current)
        print(PortsReport.table(rows: listeners.map { ($0.service, $0.transport, $0.display) }, offset: current.plan.portPlan.offset,
                                workers: current.groups.count), terminator: "")
        fflush(nil)
        writePortsFile()
        SystemdNotifier.notify("READY=1\nSTATUS=serving \(listeners.count) listeners in \(current.groups.count) workers\nMAINPID=\(getpid())")
    }

    private func writePortsFile() {
        guard let path = options.portsFile else { return }
        do {
            try PortsReport.writeJSON(ports(current), order: serviceCatalog.map(\.name), to: path)
        } catch {
            logger.error("cannot write the ports file", metadata: ["error": "\(error)"])
        }
    }

    /// One listener per service, transport, address and port (the UDP siblings counted once).
    private func portsListeners(_ generation: Generation) -> [ListeningSocket] {
        var seen: Set<String> = []
        var listeners: [ListeningSocket] = []
        for planned in generation.plan.services {
            for socket in generation.sockets where socket.service == planned.descriptor.name {
                let key = "\(socket.service)/\(socket.transport)/\(socket.display)"
                guard seen.insert(key).inserted else { continue }
                listeners.append(socket)
            }
        }
        return listeners
    }

    private func ports(_ generation: Generation) -> [String: [Transport: Int]] {
        var ports: [String: [Transport: Int]] = [:]
        for socket in generation.sockets { ports[socket.service, default: [:]][socket.transport] = socket.port }
        return ports
    }

    // MARK: - Exits

    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return }
            if upgradeHelpers.remove(pid) != nil { continue }
            guard let index = workers.firstIndex(where: { $0.pid == pid }) else { continue }
            let worker = workers[index]
            worker.exited = true
            readOutput(worker)  // what it wrote last
            if worker.output >= 0 { close(worker.output); worker.output = -1 }
            if worker.notify >= 0 { close(worker.notify); worker.notify = -1 }
            if worker.go >= 0 { close(worker.go); worker.go = -1 }
            workers.remove(at: index)
            // The connections it had open are gone with it.
            region.events?.forgetConnections(ofProcess: worker.pid)
            workerExited(worker, status: status)
        }
    }

    static func describe(status: Int32) -> (text: String, clean: Bool, code: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            let code = (status >> 8) & 0xff
            return (code == 0 ? "exited with status 0" : "exited with status \(code)", code == 0, code)
        }
        let name = strsignal(signal).map { String(cString: $0) } ?? "signal"
        return ("killed by signal \(signal) (\(name))\((status & 0x80) != 0 ? ", core dumped" : "")", false, 128 + signal)
    }

    private func workerExited(_ worker: Worker, status: Int32) {
        let (reason, clean, code) = Self.describe(status: status)
        var metadata: Logger.Metadata = ["worker": "\(worker.label)", "pid": "\(worker.pid)", "status": "\(reason)"]
        if stopping || worker.askedToStop {
            if clean { logger.info("worker stopped", metadata: metadata) } else { logger.warning("worker stopped", metadata: metadata) }
            return
        }
        if let next, worker.generation == next.number {
            if handover == .preparing {
                abandonReload("worker \(worker.label) \(reason) before it was ready")
                return
            }
            // The old generation has already let go of the sockets: the new one is the host's
            // now, and this worker is restarted like any other.
            commitReload()
        }
        guard worker.generation == current.number else { return }
        if !announced {
            // A worker that cannot start (a key it cannot read as the unprivileged user, say)
            // stops the whole start, as it would in one process.
            logger.error("worker \(reason) before it was ready: stopping", metadata: metadata)
            exitCode = code == 0 ? 1 : min(code, 125)
            beginStop(signal: SIGTERM, quiet: true)
            return
        }
        metadata["last_lines"] = .array(worker.lastLines(5).map { .string($0) })
        let services = worker.group.services
        hostEvents.emit(service: "inetkit", kind: "worker.exit") { body in
            body.string("worker", worker.label)
            body.int("pid", Int(worker.pid))
            body.string("status", reason)
            body.strings("services", services)
        }
        for service in services {
            for transport in [Transport.tcp, .udp] {
                guard let counters = region.counters(service: service, transport: transport) else { continue }
                counters.restarts.wrappingAdd(1)
                // The connections it held are gone with it.
                let stillServing = workers.contains { $0.group.services.contains(service) && !$0.exited }
                if !stillServing { counters.activeConnections.store(0) }
            }
        }
        let lived = Self.now() - worker.started
        let count = lived < Self.stableAfter ? (crashes[worker.group.name] ?? 0) + 1 : 1
        crashes[worker.group.name] = count
        if count > Self.immediateRestarts {
            let delay = min(current.config.restartBackoffMax, 0.25 * pow(2, Double(count - Self.immediateRestarts - 1)))
            metadata["crashes_in_a_row"] = "\(count)"
            metadata["next_start_in_s"] = "\(delay)"
            logger.error("worker \(reason): it keeps crashing, backing off", metadata: metadata)
            scheduleRestart(worker.group, delay: delay)
        } else {
            logger.error("worker \(reason): restarting", metadata: metadata)
            spawn(worker.group, generation: current)
        }
        publish()
    }

    private func scheduleRestart(_ group: WorkerGroup, delay: Double) {
        restartAt[group.name] = Self.now() + delay
    }

    // MARK: - Listing

    /// The services' states and listeners, for every worker's status pages.
    private func publish() {
        let generation = current
        var listing: [ServiceListing] = []
        for planned in generation.plan.services {
            let name = planned.descriptor.name
            guard planned.enabled, let group = generation.groups.first(where: { $0.services.contains(name) }) else {
                listing.append(ServiceListing(name: name, enabled: false, state: stoppedByReload.contains(name) ? "stopped" : "disabled", listeners: []))
                continue
            }
            let state: String
            if restartAt[group.name] != nil {
                state = "backoff"
            } else if workers.contains(where: { $0.group.services.contains(name) && $0.ready && !$0.exited && !$0.askedToStop }) {
                state = "running"
            } else {
                state = "starting"
            }
            var seen: Set<String> = []
            var listeners: [ListenerStatus] = []
            for socket in generation.sockets where socket.service == name {
                guard seen.insert("\(socket.transport)/\(socket.display)").inserted else { continue }
                listeners.append(ListenerStatus(transport: socket.transport, address: socket.display, port: socket.port))
            }
            listing.append(ServiceListing(name: name, enabled: true, state: state, listeners: listeners))
        }
        region.publish(listing)
    }

    // MARK: - Reload

    private func beginReload(reason: String) {
        if next != nil {
            reloadQueued = true
            return
        }
        SystemdNotifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Int(Self.now() * 1_000_000))")
        let config: HostConfig
        let configText: String
        let plan: HostPlan
        do {
            (config, configText) = try HostSetup.loadConfigAndText(options.configPath)
            try HostSetup.ensureCertificate(config, overrides: options.overrides, logger: logger)
            plan = try HostPlan.make(config: config, overrides: options.overrides, catalog: serviceCatalog,
                                     canBindPrivilegedPorts: HostSetup.canBindPrivilegedPorts)
        } catch {
            logger.error("reload failed; the previous configuration stays in force", metadata: ["error": "\(error)"])
            SystemdNotifier.notify("READY=1")
            return
        }
        // Keep the sockets that match; bind the new ones.
        var kept: [ListeningSocket] = []
        var fresh: [ListeningSocket] = []
        do {
            let addresses = plan.bindAddresses.filter { !$0.optional || InetHost.addressIsAvailable($0.host) }
            for planned in plan.services where planned.enabled {
                let name = planned.descriptor.name
                let mine = current.sockets.filter { $0.service == name }
                let matches = mine.filter { socket in
                    planned.transports.contains(socket.transport)
                        && addresses.contains { $0.host == socket.address.host }
                        && (planned.port == 0 || planned.port == socket.port)
                }
                let coveredAll = planned.transports.allSatisfy { transport in
                    addresses.allSatisfy { address in matches.contains { $0.transport == transport && $0.address.host == address.host } }
                }
                if coveredAll {
                    kept += matches
                } else {
                    fresh += try SocketBinder.bind(service: name, transports: planned.transports, port: planned.port,
                                                   addresses: addresses, udpSockets: HostSetup.udpSocketsPerAddress,
                                                   receiveBuffer: planned.limits.udpReceiveBuffer,
                                                   spreadByCPU: !planned.descriptor.udpKeepsSourceOrder)
                }
            }
        } catch {
            for socket in fresh { socket.close() }
            logger.error("reload failed; the previous configuration stays in force", metadata: ["error": "\(error)"])
            SystemdNotifier.notify("READY=1")
            return
        }
        if let account { HostSetup.prepareDataDirectory(plan, for: account, logger: logger) }
        let groups = WorkerGroups.plan(
            config: config.workers, running: plan.services.filter(\.enabled).map(\.descriptor.name), catalog: serviceCatalog.map(\.name))
        let memfd: Int32
        do {
            memfd = try Self.configMemfd(configText)
        } catch {
            for socket in fresh { socket.close() }
            logger.error("reload failed; the previous configuration stays in force", metadata: ["error": "\(error)"])
            SystemdNotifier.notify("READY=1")
            return
        }
        let generation = Generation(number: current.number + 1, config: config, plan: plan, sockets: kept + fresh, groups: groups,
                                    configDescriptor: memfd)
        next = generation
        nextDeadline = Self.now() + Self.readyTimeout
        handover = .preparing
        logger.notice("reloading: starting new workers", metadata: ["reason": "\(reason)", "generation": "\(generation.number)"])
        for group in groups { spawn(group, generation: generation, handover: true) }
        advanceHandover()
    }

    /// Moves a reload on: once every new worker is prepared the old ones are asked to stop (they
    /// stop reading at once and drain); once they have let go of the sockets the new ones start.
    private func advanceHandover() {
        guard let next else { return }
        switch handover {
        case .preparing:
            let prepared = next.groups.allSatisfy { group in
                workers.contains { $0.generation == next.number && $0.group == group && $0.prepared && !$0.exited }
            }
            guard prepared else { return }
            handover = .closing
            nextDeadline = Self.now() + 3
            restartAt = [:]
            for worker in workers where worker.generation != next.number && !worker.askedToStop {
                worker.askedToStop = true
                kill(worker.pid, SIGTERM)
            }
            advanceHandover()
        case .closing:
            let letGo = workers.allSatisfy { $0.generation == next.number || $0.exited || $0.listenersClosed || !$0.askedToStop }
            if letGo { releaseNewGeneration() }
        case .starting:
            break
        }
    }

    private func releaseNewGeneration() {
        guard let next else { return }
        handover = .starting
        nextDeadline = Self.now() + Self.readyTimeout
        for worker in workers where worker.generation == next.number && worker.go >= 0 {
            var byte: UInt8 = 1
            _ = write(worker.go, &byte, 1)
            close(worker.go)
            worker.go = -1
        }
        if allReady(next) { commitReload() }
    }

    /// Every worker of the new generation is ready: the old ones drain and go.
    private func commitReload() {
        guard let next else { return }
        hostEvents.emit(service: "inetkit", kind: "host.reload") { body in
            body.int("generation", next.number)
            body.strings("services", next.plan.services.filter(\.enabled).map(\.descriptor.name))
        }
        let old = current
        handover = .preparing
        for worker in workers where worker.generation != next.number && !worker.askedToStop {
            worker.askedToStop = true
            kill(worker.pid, SIGTERM)
        }
        let keptDescriptors = Set(next.sockets.map(\.descriptor))
        for socket in old.sockets where !keptDescriptors.contains(socket.descriptor) { socket.close() }
        close(old.configDescriptor)
        stoppedByReload = Set(old.plan.services.filter(\.enabled).map(\.descriptor.name))
            .subtracting(next.plan.services.filter(\.enabled).map(\.descriptor.name))
        current = next
        self.next = nil
        crashes = [:]
        restartAt = [:]
        publish()
        writePortsFile()
        let changes = Self.changes(from: old, to: next)
        logger.notice("configuration reloaded", metadata: [
            "generation": "\(next.number)", "changes": .array(changes.map { .string($0) }),
        ])
        if !announced {
            announced = true
            announce()
        } else {
            SystemdNotifier.notify("READY=1\nSTATUS=serving \(portsListeners(next).count) listeners in \(next.groups.count) workers")
        }
        if reloadQueued {
            reloadQueued = false
            beginReload(reason: "SIGHUP (queued)")
        }
    }

    /// What a reload changed, in the words the one-process host uses for it.
    static func changes(from old: Generation, to new: Generation) -> [String] {
        var changes: [String] = []
        if new.plan.bindAddresses != old.plan.bindAddresses { changes.append("bind addresses changed") }
        if new.plan.portPlan != old.plan.portPlan { changes.append("port offset changed") }
        if new.plan.shutdownGrace != old.plan.shutdownGrace {
            changes.append("shutdown_grace: \(old.plan.shutdownGrace) s → \(new.plan.shutdownGrace) s")
        }
        if new.plan.dataDirectory != old.plan.dataDirectory { changes.append("data_dir changed to \(new.plan.dataDirectory)") }
        for planned in new.plan.services {
            let name = planned.descriptor.name
            guard let previous = old.plan.services.first(where: { $0.descriptor.name == name }) else { continue }
            switch (previous.enabled, planned.enabled) {
            case (false, true): changes.append("\(name): enabled")
            case (true, false): changes.append("\(name): disabled (open connections finish)")
            case (true, true):
                let before = Set(old.sockets.filter { $0.service == name }.map { "\($0.transport) \($0.display)" })
                let after = Set(new.sockets.filter { $0.service == name }.map { "\($0.transport) \($0.display)" })
                if before != after { changes.append("\(name): listeners changed") }
                if planned.limits != previous.limits { changes.append("\(name): limits updated") }
                if planned.options != previous.options { changes.append("\(name): options changed (new connections and datagrams use them)") }
            case (false, false): break
            }
        }
        if old.groups != new.groups { changes.append("workers regrouped") }
        return changes
    }

    private func abandonReload(_ why: String) {
        guard let next else { return }
        for worker in workers where worker.generation == next.number {
            worker.askedToStop = true
            kill(worker.pid, SIGKILL)
        }
        let currentDescriptors = Set(current.sockets.map(\.descriptor))
        for socket in next.sockets where !currentDescriptors.contains(socket.descriptor) { socket.close() }
        close(next.configDescriptor)
        self.next = nil
        logger.error("reload failed; the previous configuration stays in force", metadata: ["error": "\(why)"])
        SystemdNotifier.notify("READY=1")
        if reloadQueued {
            reloadQueued = false
            beginReload(reason: "SIGHUP (queued)")
        }
    }

    // MARK: - Upgrade

    /// SIGUSR2: re-executes the binary on disk in this process, passing it the sockets, the
    /// region and the running workers; the new image starts a new generation of workers from
    /// itself and retires the old ones, as a reload does.
    private func upgrade() {
        if next != nil {
            logger.warning("upgrade refused: a reload is in progress")
            return
        }
        var target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? executable
        if target.hasSuffix(" (deleted)") { target = String(target.dropLast(" (deleted)".count)) }
        guard access(target, X_OK) == 0 else {
            logger.error("upgrade failed: the binary cannot be run", metadata: ["path": "\(target)", "error": "\(String(cString: strerror(errno)))"])
            return
        }
        // Check the new binary runs at all before this process becomes it.
        let devNull = Self.moveHigh(open("/dev/null", O_WRONLY | O_CLOEXEC))
        let helper = Self.spawnProcess(target, arguments: [target, "--version"], environment: ["PATH=/usr/bin:/bin"], fds: [], output: devNull, account: account)
        close(devNull)
        var status: Int32 = 0
        var checked = false
        if helper > 0 {
            let deadline = Self.now() + 10
            while Self.now() < deadline {
                if waitpid(helper, &status, WNOHANG) == helper { checked = true; break }
                usleep(10_000)
            }
            if !checked { kill(helper, SIGKILL); upgradeHelpers.insert(helper) }
        }
        guard checked, Self.describe(status: status).clean else {
            logger.error("upgrade failed: the new binary does not run; the running one goes on", metadata: ["path": "\(target)"])
            return
        }
        var keep: [Int32] = current.sockets.map(\.descriptor) + [region.descriptor, current.configDescriptor]
        var described: [String] = []
        for worker in workers where !worker.exited {
            if worker.output >= 0 { keep.append(worker.output) }
            if worker.notify >= 0 { keep.append(worker.notify) }
            described.append([
                "\(worker.pid)", worker.group.name, worker.group.services.joined(separator: "+"), "\(worker.generation)",
                "\(worker.output)", "\(worker.notify)", worker.notifyName, worker.ready ? "1" : "0", worker.askedToStop ? "1" : "0",
            ].joined(separator: "/"))
        }
        let state = UpgradeState(
            sockets: current.sockets.map { "\($0.descriptor)=\($0.service)" },
            region: region.descriptor, config: current.configDescriptor, workers: described, generation: current.number)
        for fd in keep { _ = inetkit_keep_on_exec(fd) }
        setenv("INETKIT_UPGRADE", state.encoded, 1)
        // What was emitted so far is written; the new image goes on after it.
        journal?.stop()
        journal = nil
        logger.notice("upgrading in place: executing the binary on disk", metadata: ["path": "\(target)", "workers": "\(described.count)"])
        LogSink.standardError.flush()
        // The new image installs its own handlers; restore the defaults' mask for execve.
        var arguments: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
        execv(target, &arguments)
        let error = String(cString: strerror(errno))
        for pointer in arguments { free(pointer) }
        startJournal()
        for fd in keep { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        unsetenv("INETKIT_UPGRADE")
        logger.error("upgrade failed; the running binary goes on", metadata: ["path": "\(target)", "error": "\(error)"])
    }

    /// What the old image passes to the new one in `INETKIT_UPGRADE`.
    struct UpgradeState {
        var sockets: [String]
        var region: Int32
        var config: Int32
        var workers: [String]
        var generation: Int

        var encoded: String {
            "v1;\(region);\(config);\(generation);\(sockets.joined(separator: ","));\(workers.joined(separator: ","))"
        }

        static func decode(_ text: String) -> UpgradeState? {
            let parts = text.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 6, parts[0] == "v1", let region = Int32(parts[1]), let config = Int32(parts[2]),
                  let generation = Int(parts[3]) else { return nil }
            return UpgradeState(
                sockets: parts[4].split(separator: ",").map(String.init), region: region, config: config,
                workers: parts[5].split(separator: ",").map(String.init), generation: generation)
        }
    }

    /// After an upgrade: the old image's workers, adopted (they are this process's children
    /// still), to be retired once the new image's workers are ready.
    func adopt(workers described: [String]) {
        for entry in described {
            let fields = entry.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 9, let pid = pid_t(fields[0]), let generation = Int(fields[3]),
                  let output = Int32(fields[4]), let notify = Int32(fields[5]) else { continue }
            _ = fcntl(output, F_SETFD, FD_CLOEXEC)
            _ = fcntl(notify, F_SETFD, FD_CLOEXEC)
            _ = fcntl(output, F_SETFL, fcntl(output, F_GETFL) | O_NONBLOCK)
            let worker = Worker(
                group: WorkerGroup(name: fields[1], services: fields[2].split(separator: "+").map(String.init)),
                generation: generation, pid: pid, output: output, notify: notify, notifyName: fields[6], started: Self.now())
            worker.ready = fields[7] == "1"
            worker.askedToStop = fields[8] == "1"
            workers.append(worker)
        }
    }

    /// The new image's first steps after an upgrade: announce nothing twice; start its own
    /// workers as a reload would, and retire the adopted ones when they are ready.
    func runAfterUpgrade(adopted: [String]) -> Int32 {
        setUpSignals()
        adopt(workers: adopted)
        announced = true
        logger.notice("upgraded in place: starting workers of the new binary", metadata: ["adopted_workers": "\(workers.count)"])
        let copy = fcntl(current.configDescriptor, F_DUPFD_CLOEXEC, SocketBinder.minimumDescriptor)
        let generation = Generation(number: current.number + 1, config: current.config, plan: current.plan, sockets: current.sockets,
                                    groups: current.groups, configDescriptor: copy)
        next = generation
        nextDeadline = Self.now() + Self.readyTimeout
        handover = .preparing
        // The adopted workers belong to generation `current.number`.
        for group in generation.groups { spawn(group, generation: generation, handover: true) }
        advanceHandover()
        startJournal()
        hostEvents.emit(service: "inetkit", kind: "host.upgrade") { body in
            body.int("pid", Int(getpid()))
            body.int("adopted_workers", workers.count)
        }
        loop()
        stopEvents()
        return exitCode
    }

    // MARK: - Stop

    private func beginStop(signal: Int32, quiet: Bool = false) {
        if stopping {
            if signal == SIGINT || signal == SIGTERM, !killedAll, !quiet {
                logger.warning("second stop signal: killing the workers")
                killedAll = true
                for worker in workers where !worker.exited { kill(worker.pid, SIGKILL) }
            }
            return
        }
        stopping = true
        SystemdNotifier.notify("STOPPING=1")
        if !quiet { logger.notice("shutting down", metadata: ["grace_s": "\(current.plan.shutdownGrace)", "workers": "\(workers.count)"]) }
        for worker in workers where !worker.exited {
            worker.askedToStop = true
            kill(worker.pid, SIGTERM)
        }
        // Stop accepting at once: the workers close their copies as they drain.
        for socket in current.sockets { socket.close() }
        if let next {
            let currentDescriptors = Set(current.sockets.map(\.descriptor))
            for socket in next.sockets where !currentDescriptors.contains(socket.descriptor) { socket.close() }
            self.next = nil
        }
        restartAt = [:]
        stopDeadline = Self.now() + current.plan.shutdownGrace + 5
    }

    private func finish() {
        guard exitCode == 0 else { return }
        var snapshots: [ServiceCounters.Snapshot] = []
        for descriptor in serviceCatalog {
            for transport in descriptor.transports {
                if let counters = region.counters(service: descriptor.name, transport: transport) { snapshots.append(counters.snapshot()) }
            }
        }
        InetHost.logSummary(snapshots, logger: logger)
    }

    static func now() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }
}
