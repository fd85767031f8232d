import ArgumentParser
import InetCore
import Logging
import NIOPosix
import ServiceLifecycle
import UnixSignals
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `inetkit worker --services dns,snmp`: serves some services on sockets it inherits
/// (systemd's socket activation, or the supervisor of `inetkit serve`), or binds them itself.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Serve some services on inherited sockets (LISTEN_FDS from systemd or the supervisor), or on sockets of its own.",
        discussion: """
            `inetkit serve` starts one worker per protocol family and passes each its sockets; \
            systemd can do the same with a .socket unit (FileDescriptorName= names the service; \
            see contrib/systemd). Started without sockets it binds the services' ports itself. \
            Started as root it binds first, then runs as user:/group: of the config (default: the \
            user who ran sudo, else inetkit, else nobody) before it reads a byte from a peer.
            """
    )

    @Option(name: .long, help: "The services to serve (comma-separated), e.g. dns,snmp.")
    var services: String

    @OptionGroup var options: HostOptions

    var config: String? { options.config }
    var portOffset: Int? { options.portOffset }
    var bind: [String] { options.bind }
    var portsFile: String? { options.portsFile }
    var logLevel: String? { options.logLevel }
    var logFormat: String? { options.logFormat }

    func validate() throws {
        if serviceList.isEmpty { throw ValidationError("--services needs at least one service") }
    }

    private var serviceList: [String] {
        services.split(separator: ",").map { String($0).trimming(" ") }.filter { !$0.isEmpty }
    }

    func run() async throws {
        raiseOpenFileLimit()
        let environment = ProcessInfo.processInfo.environment
        let supervised = environment["INETKIT_SUPERVISED"] == "1"
        let configText: (text: String, file: String)?
        do {
            configText = try Self.configFromSupervisor(environment)
        } catch {
            fail("\(error)", code: 2)
        }
        let fileConfig: HostConfig
        do {
            if let configText {
                fileConfig = configText.text.isEmpty && configText.file == "<defaults>"
                    ? HostConfig() : try HostConfig.parse(yaml: configText.text, file: configText.file, catalog: serviceCatalog)
            } else {
                fileConfig = try HostSetup.loadConfig(config)
            }
        } catch {
            fail("\(error)", code: 2)
        }
        HostSetup.bootstrapLogging(level: logLevel, format: logFormat, config: fileConfig)
        var logger = Logger(label: "inetkit")
        if supervised {
            let worker = environment["INETKIT_WORKER"] ?? serviceList.joined(separator: ",")
            logger[metadataKey: "worker"] = "\(worker)"
            LogLine.processField = ("worker", worker)
        }

        let region: SharedRegion?
        do {
            region = try environment["INETKIT_REGION_FD"].flatMap(Int32.init).map { fd throws(RegionError) in try SharedRegion.attach(descriptor: fd) }
        } catch {
            fail("\(error)", code: 2)
        }
        var inherited: [ListeningSocket]?
        do {
            inherited = try SocketActivation.inherited(environment: environment)
        } catch {
            fail("\(error)", code: 2)
        }
        SocketActivation.clearEnvironment()
        // (The log's descriptor is taken before its variable goes.)
        _ = LogSink.standardError
        for name in ["INETKIT_REGION_FD", "INETKIT_CONFIG_FD", "INETKIT_CONFIG_NAME", "INETKIT_SUPERVISED", "INETKIT_WORKER", "INETKIT_GO_FD", "INETKIT_LOG_FD"] { unsetenv(name) }

        let overrides = HostOverrides(
            bind: bind.isEmpty ? nil : bind, portOffset: portOffset, onlyServices: serviceList, createOnlyListed: true)
        let privileged = HostSetup.canBindPrivilegedPorts
        let plan: HostPlan
        do {
            // Under the supervisor the certificate is there already (it made it, as root).
            if !supervised { try HostSetup.ensureCertificate(fileConfig, overrides: overrides, logger: logger) }
            plan = try HostPlan.make(config: fileConfig, overrides: overrides, catalog: serviceCatalog, canBindPrivilegedPorts: privileged)
        } catch {
            fail("\(error)", code: 2)
        }
        if let given = inherited {
            let names = Set(serviceList)
            for socket in given where !names.contains(socket.service) {
                logger.warning("inherited a socket for a service this worker does not run: closed", metadata: [
                    "service": "\(socket.service)", "address": "\(socket.display)", "transport": "\(socket.transport)",
                ])
                socket.close()
            }
            inherited = given.filter { names.contains($0.service) }
        }
        // Started as root: bind what was not inherited, then never parse a byte as root.
        do {
            // A supervised worker was started as the account already (or as root on purpose).
            if !supervised, let account = try HostSetup.runAccount(fileConfig, logger: logger) {
                if inherited == nil {
                    inherited = try HostSetup.bindAll(plan, udpSockets: HostSetup.udpSocketsPerAddress, logger: logger)
                }
                HostSetup.prepareDataDirectory(plan, for: account, logger: logger)
                try account.drop()
                logger.info("running as \(account)", metadata: ["services": "\(serviceList.joined(separator: ","))"])
            }
        } catch {
            fail("\(error)", code: 1)
        }

        if supervised { Self.watchParent(logger: logger) }
        let group = MultiThreadedEventLoopGroup.singleton
        let host = InetHost(plan: plan, group: group, logger: logger, region: region, inherited: inherited ?? [], journal: region == nil)
        let portsFile = self.portsFile
        let configPath = config
        let hostService = HostService(
            host: host, logger: logger,
            reloadPlan: {
                try HostPlan.make(config: try HostSetup.loadConfig(configPath), overrides: overrides, catalog: serviceCatalog,
                                  canBindPrivilegedPorts: privileged, directory: host.directory)
            },
            onReady: { host in
                if !supervised {
                    print(PortsReport.table(host.listeners, offset: host.plan.portPlan.offset), terminator: "")
                    fflush(nil)
                }
                if let portsFile { try PortsReport.writeJSON(host.ports, order: serviceCatalog.map(\.name), to: portsFile) }
            },
            supervised: supervised,
            beforeStart: {
                // A worker of a new generation (reload, upgrade) is fully prepared before it
                // reads a socket, and waits for the supervisor's go: the old generation stops
                // reading first, so no socket is read by two processes at once.
                guard let goFD = environment["INETKIT_GO_FD"].flatMap(Int32.init) else { return }
                SystemdNotifier.notify("X_INETKIT_PREPARED=1", socketPath: environment["NOTIFY_SOCKET"])
                await Self.waitForGo(goFD)
            })
        await HostSetup.runUntilStopped(hostService, logger: logger)
    }

    /// The config the supervisor validated, passed as a memfd (`INETKIT_CONFIG_FD`) so that every
    /// worker of a generation runs the same text even if the file changes meanwhile.
    static func configFromSupervisor(_ environment: [String: String], keepOpen: Bool = false) throws -> (text: String, file: String)? {
        guard let fdText = environment["INETKIT_CONFIG_FD"] else { return nil }
        guard let fd = Int32(fdText), fd >= 0 else { throw ConfigError(file: "INETKIT_CONFIG_FD", key: nil, line: nil, message: "not a descriptor") }
        defer { if !keepOpen { close(fd) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var offset: off_t = 0
        while true {
            let count = pread(fd, &chunk, chunk.count, offset)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw ConfigError(file: "INETKIT_CONFIG_FD", key: nil, line: nil, message: String(cString: strerror(errno))) }
            if count == 0 { break }
            bytes += chunk[0..<count]
            offset += off_t(count)
            guard bytes.count <= 16 << 20 else { throw ConfigError(file: "INETKIT_CONFIG_FD", key: nil, line: nil, message: "more than 16 MiB") }
        }
        return (String(decoding: bytes, as: UTF8.self), environment["INETKIT_CONFIG_NAME"] ?? "<defaults>")
    }

    /// Blocks (off the cooperative pool) until a byte or end of file arrives on `fd`.
    static func waitForGo(_ fd: Int32) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                var byte: UInt8 = 0
                while read(fd, &byte, 1) < 0 && errno == EINTR {}
                close(fd)
                continuation.resume()
            }
            thread.start()
        }
    }

    /// A supervised worker whose supervisor is gone (killed with SIGKILL, say) stops by itself:
    /// its sockets are the supervisor's, and a new supervisor starts workers of its own.
    static func watchParent(logger: Logger) {
        let parent = getppid()
        let thread = Thread {
            while true {
                sleep(1)
                if getppid() != parent {
                    logger.warning("the supervisor is gone: stopping")
                    kill(getpid(), SIGTERM)
                    return
                }
            }
        }
        thread.start()
    }
}
