import InetCore
import InetSimple
import Logging
import NIOCore
import NIOPosix
import XCTest

/// Starts the real host in-process on loopback, every service on a free port (port 0).
enum HostHarness {
    static let group = MultiThreadedEventLoopGroup.singleton

    static var ipv6Available: Bool {
        (try? SocketAddress(ipAddress: "::1", port: 0)).map { _ in
            let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_addr = in6addr_loopback
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
            }
        } ?? false
    }

    static func plan(_ yaml: String = "", bind: [String] = ["127.0.0.1"], only: [String]? = nil, keepPorts: Bool = false) throws -> HostPlan {
        let config = try HostConfig.parse(yaml: yaml, file: "test.yaml", catalog: SimpleServices.catalog)
        var plan = try HostPlan.make(
            config: config, overrides: HostOverrides(bind: bind, onlyServices: only),
            catalog: SimpleServices.catalog, canBindPrivilegedPorts: false)
        if !keepPorts {
            for index in plan.services.indices { plan.services[index].port = 0 }
        }
        return plan
    }

    static func start(_ yaml: String = "", bind: [String] = ["127.0.0.1"], only: [String]? = nil) async throws -> InetHost {
        let host = InetHost(plan: try plan(yaml, bind: bind, only: only), group: group, logger: quietLogger)
        try await host.start()
        return host
    }

    /// A plan from `yaml` over `catalog`, only `only` enabled, every port 0, loopback IPv4.
    static func plan(catalog: [ServiceDescriptor], yaml: String, only: [String]) throws -> HostPlan {
        let config = try HostConfig.parse(yaml: yaml, file: "test.yaml", catalog: catalog)
        var plan = try HostPlan.make(config: config, overrides: HostOverrides(bind: ["127.0.0.1"], onlyServices: only),
                                     catalog: catalog, canBindPrivilegedPorts: false)
        for index in plan.services.indices { plan.services[index].port = 0 }
        return plan
    }

    /// Starts the host of `plan(catalog:yaml:only:)`.
    static func start(catalog: [ServiceDescriptor], yaml: String, only: [String]) async throws -> InetHost {
        let host = InetHost(plan: try plan(catalog: catalog, yaml: yaml, only: only), group: group, logger: quietLogger)
        try await host.start()
        return host
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "inetkit-test")
        // INETKIT_TEST_LOG=1 shows the host's connection log, for diagnosing a failing test.
        logger.logLevel = getenv("INETKIT_TEST_LOG") != nil ? .info : .error
        return logger
    }

    /// A bare TCP connection (nothing reads it) for tests that hold one open.
    static func connectBare(port: Int, host: String = "127.0.0.1") async throws -> any Channel {
        try await ClientBootstrap(group: group).connect(host: host, port: port).get()
    }

    /// A TCP connection to talk through; use it inside `executeThenClose`.
    static func connect(port: Int, host: String = "127.0.0.1") async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Waits until `condition` holds or `seconds` pass; returns whether it held.
    static func eventually(within seconds: Double, _ condition: @Sendable () async -> Bool) async -> Bool {
        let deadline = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
        while NIODeadline.now() < deadline {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return await condition()
    }

    /// Resident memory of this process in bytes (Linux).
    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var size = 0, resident = 0
        withUnsafeMutablePointer(to: &size) { sizePointer in
            withUnsafeMutablePointer(to: &resident) { residentPointer in
                _ = withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
            }
        }
        return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
