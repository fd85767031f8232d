import InetCore
import InetDNS
import InetHTTP
import InetFTP
import InetMail
import InetNTP
import InetSyslog
import InetTFTP
import InetTLS
import InetWho
import InetSimple
import InetSNMP
import NIOCore
import NIOPosix
import Synchronization
import Foundation
import XCTest

final class SimpleServicesIntegrationTests: XCTestCase {
    private let client = SimpleClient(group: HostHarness.group)

    func testEveryServiceAnswersOnTCPAndUDP() async throws {
        let bind = HostHarness.ipv6Available ? ["127.0.0.1", "::1"] : ["127.0.0.1"]
        let host = try await HostHarness.start(bind: bind)
        for kind in SimpleKind.allCases {
            for transport in Transport.allCases {
                let port = try XCTUnwrap(host.port(of: kind.rawValue, transport: transport))
                for address in bind {
                    let result = await client.exchange(SimpleRequest(kind: kind, transport: transport), target: Target(host: address, port: port))
                    XCTAssertTrue(result.ok, "\(kind) \(transport) \(address): \(result.detail)")
                }
            }
        }
        XCTAssertEqual(host.ports["echo"]?.count, 2, "each service has a TCP and a UDP listener")
        await host.shutdown(grace: 1)
    }

    func testManyClientsAtOnceOnEveryTransport() async throws {
        let host = try await HostHarness.start("limits: { udp_rate: 0 }\n", only: ["echo", "daytime"])
        for kind in [SimpleKind.echo, .daytime] {
            for transport in Transport.allCases {
                let target = Target(host: "127.0.0.1", port: host.port(of: kind.rawValue, transport: transport)!)
                let results = await client.run(SimpleRequest(kind: kind, transport: transport), targets: [target], count: 400, concurrency: 100)
                XCTAssertEqual(results.count, 400)
                let failures = results.filter { !$0.ok }.map(\.detail)
                XCTAssertEqual(failures, [], "\(kind)/\(transport)")
            }
        }
        XCTAssertEqual(host.counters(of: "echo", transport: .tcp)?.connections.load(ordering: .relaxed), 400)
        XCTAssertEqual(host.counters(of: "echo", transport: .udp)?.datagramsOut.load(ordering: .relaxed), 400)
        await host.shutdown(grace: 1)
    }

    func testLargeEchoComesBackWhole() async throws {
        let host = try await HostHarness.start(only: ["echo"])
        let target = Target(host: "127.0.0.1", port: host.port(of: "echo", transport: .tcp)!)
        let result = await client.exchange(SimpleRequest(kind: .echo, transport: .tcp, payload: .pattern(8 << 20), timeout: 60), target: target)
        XCTAssertTrue(result.ok, result.detail)
        XCTAssertEqual(result.bytesReceived, 8 << 20)
        await host.shutdown(grace: 1)
    }

    func testConnectionOverTheLimitIsClosedAtOnce() async throws {
        let host = try await HostHarness.start("services:\n  echo: { max_connections: 2 }\n", only: ["echo"])
        let port = host.port(of: "echo", transport: .tcp)!
        let first = try await HostHarness.connectBare(port: port)
        let second = try await HostHarness.connectBare(port: port)
        let openTwo = await HostHarness.eventually(within: 2) { host.openConnections == 2 }
        XCTAssertTrue(openTwo)
        let started = NIODeadline.now()
        let refused = await client.exchange(SimpleRequest(kind: .echo, transport: .tcp, timeout: 5), target: Target(host: "127.0.0.1", port: port))
        XCTAssertFalse(refused.ok)
        XCTAssertLessThan((NIODeadline.now() - started).nanoseconds, 2_000_000_000, "refused promptly, not left hanging: \(refused.detail)")
        XCTAssertEqual(host.counters(of: "echo", transport: .tcp)?.refusedConnections.load(ordering: .relaxed), 1)
        try await first.close()
        let belowLimit = await HostHarness.eventually(within: 2) { host.openConnections == 1 }
        XCTAssertTrue(belowLimit)
        let accepted = await client.exchange(SimpleRequest(kind: .echo, transport: .tcp), target: Target(host: "127.0.0.1", port: port))
        XCTAssertTrue(accepted.ok, accepted.detail)
        try await second.close()
        await host.shutdown(grace: 1)
    }

    func testIdleConnectionIsClosedAfterTimeout() async throws {
        let host = try await HostHarness.start("services:\n  echo: { idle_timeout: 300ms }\n", only: ["echo"])
        let connection = try await HostHarness.connectBare(port: host.port(of: "echo", transport: .tcp)!)
        let started = NIODeadline.now()
        let closed = await HostHarness.eventually(within: 5) { !connection.isActive }
        XCTAssertTrue(closed)
        XCTAssertGreaterThan((NIODeadline.now() - started).nanoseconds, 250_000_000)
        XCTAssertEqual(host.counters(of: "echo", transport: .tcp)?.errors.load(ordering: .relaxed), 1, "an idle timeout counts as an error")
        await host.shutdown(grace: 1)
    }

    func testChargenClientThatNeverReadsCostsBoundedMemory() async throws {
        let host = try await HostHarness.start("services:\n  chargen: { idle_timeout: 3s }\n", only: ["chargen"])
        let port = host.port(of: "chargen", transport: .tcp)!
        let channel = try await ClientBootstrap(group: HostHarness.group)
            .channelOption(.autoRead, value: false)
            .connect(host: "127.0.0.1", port: port).get()
        try await Task.sleep(nanoseconds: 500_000_000)
        let before = HostHarness.residentBytes()
        let sentBefore = host.counters(of: "chargen", transport: .tcp)!.bytesOut.load(ordering: .relaxed)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let after = HostHarness.residentBytes()
        let sentAfter = host.counters(of: "chargen", transport: .tcp)!.bytesOut.load(ordering: .relaxed)
        XCTAssertLessThan(after - before, 32 << 20, "the server must stop generating while the client does not read")
        XCTAssertEqual(sentBefore, sentAfter, "nothing more reaches the socket once its buffers are full")
        // The idle timeout ends the stalled connection.
        let closed = await HostHarness.eventually(within: 10) { host.openConnections == 0 }
        XCTAssertTrue(closed)
        try? await channel.close()
        await host.shutdown(grace: 1)
    }

    func testPinnedEventLoopsEachHoldTheCPUTheirDatagramsArriveOn() async throws {
        let cpus = InetHost.allowedCPUs()
        try XCTSkipIf(cpus.count < 2, "needs two CPUs")
        // A group of its own (pinning the shared one would hold every later test's threads).
        let group = MultiThreadedEventLoopGroup(numberOfThreads: cpus.count)
        var plan = try HostHarness.plan("pin_event_loops: true\n", only: ["echo"])
        XCTAssertTrue(plan.pinEventLoops)
        let host = InetHost(plan: plan, group: group, logger: HostHarness.quietLogger)
        try await host.start()
        var held: [[Int]] = []
        for loop in group.makeIterator() { held.append(try await loop.submit { InetHost.allowedCPUs() }.get()) }
        // Loop i is held on the CPU c with c % loops == i, the one steering gives socket i.
        XCTAssertEqual(held.map(\.count), Array(repeating: 1, count: cpus.count), "\(held)")
        for (index, pinned) in held.enumerated() { XCTAssertEqual(pinned.first.map { $0 % cpus.count }, index) }
        await host.shutdown(grace: 1)
        // Off (the default): the loops may run anywhere the process may.
        plan = try HostHarness.plan(only: ["echo"])
        XCTAssertFalse(plan.pinEventLoops)
        let free = MultiThreadedEventLoopGroup(numberOfThreads: cpus.count)
        let other = InetHost(plan: plan, group: free, logger: HostHarness.quietLogger)
        try await other.start()
        for loop in free.makeIterator() {
            let allowed = try await loop.submit { InetHost.allowedCPUs() }.get()
            XCTAssertEqual(allowed, cpus)
        }
        await other.shutdown(grace: 1)
        try await group.shutdownGracefully()
        try await free.shutdownGracefully()
        XCTAssertThrowsError(try HostHarness.plan("pin_event_loops: sometimes\n", only: ["echo"]))
    }

    func testPortInUseStopsStartWithServiceTransportAndAddress() async throws {
        let blocker = try await ServerBootstrap(group: HostHarness.group).bind(host: "127.0.0.1", port: 0).get()
        let port = blocker.localAddress!.port!
        var plan = try HostHarness.plan(only: ["echo"])
        plan.services[0].port = port
        let host = InetHost(plan: plan, group: HostHarness.group, logger: HostHarness.quietLogger)
        do {
            try await host.start()
            XCTFail("start must fail while the port is taken")
        } catch {
            XCTAssertEqual(error.description, "cannot bind echo/tcp on 127.0.0.1:\(port): Address already in use (another program holds this port)")
        }
        XCTAssertTrue(host.listeners.isEmpty, "nothing stays bound after a failed start")
        try await blocker.close()
    }

    func testReloadEnablesAndDisablesServicesWithoutDroppingConnections() async throws {
        let host = try await HostHarness.start(only: ["echo", "time"])
        let echoPort = host.port(of: "echo", transport: .tcp)!
        let held = try await HostHarness.connect(port: echoPort)
        // Accepted by the host (not just queued by the kernel) before the listener closes.
        let accepted = await HostHarness.eventually(within: 2) { host.openConnections == 1 }
        XCTAssertTrue(accepted)
        var next = try HostHarness.plan("services:\n  echo: { max_connections: 5 }\n", only: ["daytime", "time"])
        next.services = next.services.map { var s = $0; s.port = 0; return s }
        let changes = await host.apply(next)
        XCTAssertTrue(changes.contains("echo: disabled (open connections finish)"), "\(changes)")
        XCTAssertTrue(changes.contains("daytime: enabled"), "\(changes)")
        XCTAssertNil(host.port(of: "echo", transport: .tcp))
        let daytime = await client.exchange(SimpleRequest(kind: .daytime, transport: .udp), target: Target(host: "127.0.0.1", port: host.port(of: "daytime", transport: .udp)!))
        XCTAssertTrue(daytime.ok, daytime.detail)
        let refused = await client.exchange(SimpleRequest(kind: .echo, transport: .tcp), target: Target(host: "127.0.0.1", port: echoPort))
        XCTAssertEqual(refused.detail, "refused")
        // The connection made before the reload still echoes.
        try await held.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "still here"))
            var iterator = inbound.makeAsyncIterator()
            let reply = try await iterator.next()
            XCTAssertEqual(reply.map { String(buffer: $0) }, "still here")
        }
        await host.shutdown(grace: 1)
    }

    func testShutdownLetsConnectionsFinishWithinGrace() async throws {
        let host = try await HostHarness.start(only: ["echo"])
        let port = host.port(of: "echo", transport: .tcp)!
        let connection = try await HostHarness.connect(port: port)
        let accepted = await HostHarness.eventually(within: 2) { host.openConnections == 1 }
        XCTAssertTrue(accepted)
        let started = NIODeadline.now()
        let shutdown = Task { await host.shutdown(grace: 1.0) }
        try await Task.sleep(nanoseconds: 200_000_000)
        // New connections are refused, the open one still works during the grace period.
        let late = await client.exchange(SimpleRequest(kind: .echo, transport: .tcp), target: Target(host: "127.0.0.1", port: port))
        XCTAssertEqual(late.detail, "refused")
        try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "during grace"))
            var iterator = inbound.makeAsyncIterator()
            let echoed = try await iterator.next().map { String(buffer: $0) }
            XCTAssertEqual(echoed, "during grace")
            // The host closes it when the grace period is over.
            let end = try await iterator.next()
            XCTAssertNil(end)
        }
        await shutdown.value
        let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        XCTAssertGreaterThan(elapsed, 0.9)
        XCTAssertLessThan(elapsed, 3)
    }

    func testShutdownWithoutConnectionsIsImmediate() async throws {
        let host = try await HostHarness.start()
        let started = NIODeadline.now()
        await host.shutdown(grace: 10)
        XCTAssertLessThan((NIODeadline.now() - started).nanoseconds, 1_000_000_000)
    }

    func testUDPRepliesAreRateLimitedPerSource() async throws {
        let host = try await HostHarness.start("services:\n  chargen: { udp_rate: 5, udp_burst: 5 }\n", only: ["chargen"])
        let target = Target(host: "127.0.0.1", port: host.port(of: "chargen", transport: .udp)!)
        let started = NIODeadline.now()
        let results = await client.run(SimpleRequest(kind: .chargen, transport: .udp, timeout: 0.1), targets: [target], count: 30, concurrency: 1)
        let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        let answered = results.filter(\.ok).count
        XCTAssertGreaterThanOrEqual(answered, 5)
        XCTAssertLessThanOrEqual(Double(answered), 5 + 5 * elapsed + 1, "a burst of 5, then 5 per second")
        XCTAssertLessThan(answered, 30)
        let dropped = host.counters(of: "chargen", transport: .udp)!.datagramsDropped.load(ordering: .relaxed)
        XCTAssertEqual(dropped, 30 - answered)
        await host.shutdown(grace: 1)
    }

    func testClientReportsRefusedAndTimedOut() async throws {
        // A port nobody listens on: TCP is refused, UDP gets ICMP port unreachable.
        let blocker = try await DatagramBootstrap(group: HostHarness.group).bind(host: "127.0.0.1", port: 0).get()
        let port = blocker.localAddress!.port!
        try await blocker.close()
        let tcp = await client.exchange(SimpleRequest(kind: .daytime, transport: .tcp, timeout: 2), target: Target(host: "127.0.0.1", port: port))
        XCTAssertEqual(tcp.detail, "refused")
        let udp = await client.exchange(SimpleRequest(kind: .daytime, transport: .udp, timeout: 2), target: Target(host: "127.0.0.1", port: port))
        XCTAssertEqual(udp.detail, "refused")
        // A UDP socket that never answers.
        let silent = try await DatagramBootstrap(group: HostHarness.group).bind(host: "127.0.0.1", port: 0).get()
        let quiet = await client.exchange(SimpleRequest(kind: .time, transport: .udp, timeout: 0.3), target: Target(host: "127.0.0.1", port: silent.localAddress!.port!))
        XCTAssertEqual(quiet.detail, "timed out")
        try await silent.close()
    }
}

final class ShippedFilesTests: XCTestCase {
    func testExampleConfigInContribLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("contrib/inetkit.yaml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let catalog = SimpleServices.catalog + [FTPService.descriptor, SMTPService.descriptor, POP3Service.descriptor, SNMPService.descriptor,
                                                NTPService.descriptor, FingerService.descriptor, IdentService.descriptor,
                                                SMTPService.implicitTLSDescriptor, POP3Service.implicitTLSDescriptor, FTPService.implicitTLSDescriptor,
                                                TFTPService.descriptor, SyslogService.descriptor,
                                                DNSService.descriptor, HTTPService.descriptor, HTTPSService.descriptor]
        var config = try HostConfig.parse(yaml: text, file: path, catalog: catalog)
        XCTAssertEqual(config.dataDirectory, "/var/lib/inetkit")
        // What `inetkit serve` does first: the generated certificate in the data folder.
        config.dataDirectory = NSTemporaryDirectory() + "inetkit-contrib-\(getpid())"
        _ = try DefaultCertificate.ensure(dataDirectory: config.dataDirectory, names: ["localhost"])
        let plan = try HostPlan.make(config: config, overrides: HostOverrides(), catalog: catalog, canBindPrivilegedPorts: true)
        XCTAssertEqual(plan.services.filter(\.enabled).count, 21)
        XCTAssertEqual(plan.services.first { $0.descriptor.name == "chargen" }?.limits.udpRate, 10)
        let syslog = try XCTUnwrap(plan.services.first { $0.descriptor.name == "syslog" })
        XCTAssertEqual(syslog.limits.udpRate, 0, "syslog answers nothing: no per-source limit by default")
        XCTAssertEqual(syslog.limits.idleTimeout, 86_400)
        XCTAssertEqual(syslog.limits.udpReceiveBuffer, 4 << 20)
        // The services with their own defaults keep them in the example, whose limits: block names every key.
        XCTAssertEqual(plan.services.first { $0.descriptor.name == "snmp" }?.limits.udpRate, 2000)
        XCTAssertEqual(plan.services.first { $0.descriptor.name == "ntp" }?.limits.udpRate, 10)
        XCTAssertEqual(plan.services.first { $0.descriptor.name == "dns" }?.limits.udpRate, 0, "DNS limits by RRL instead")
        XCTAssertEqual(plan.services.first { $0.descriptor.name == "dns" }?.limits.udpReceiveBuffer, 1 << 20, "room for a resolver's burst of queries")
        XCTAssertEqual(plan.services.first { $0.descriptor.name == "echo" }?.limits.udpReceiveBuffer, 0)
        XCTAssertEqual((syslog.service as? SyslogService)?.store.settings.directory, config.dataDirectory + "/syslog")
        XCTAssertEqual(config.limits, Limits(), "the example shows the defaults")
    }
}

final class ImplicitTLSPlanTests: XCTestCase {
    func testImplicitTLSServicesTakeTheirSiblingsOptions() throws {
        let data = NSTemporaryDirectory() + "inetkit-inherit-\(getpid())"
        let catalog = [SMTPService.descriptor, POP3Service.descriptor, SMTPService.implicitTLSDescriptor, POP3Service.implicitTLSDescriptor]
        let yaml = """
            data_dir: \(data)
            services:
              pop3: { port: 0, auth_delay: 0.5, users: [{ name: carol@inetkit.test, password: pw }] }
              pop3s: { auth_delay: 2 }
              smtp: { enabled: false, max_recipients: 7 }
            """
        let config = try HostConfig.parse(yaml: yaml, file: "t.yaml", catalog: catalog)
        // Without a certificate anywhere the implicit-TLS services cannot start, and say why.
        let bare = try HostPlan.make(config: config, overrides: HostOverrides(), catalog: catalog, canBindPrivilegedPorts: false)
        XCTAssertThrowsError(try bare.services.first { $0.descriptor.name == "pop3s" }!.service.prepare()) { error in
            XCTAssertTrue("\(error)".contains("pop3s needs a certificate"), "\(error)")
        }
        _ = try DefaultCertificate.ensure(dataDirectory: data, names: ["localhost"])
        let plan = try HostPlan.make(config: config, overrides: HostOverrides(), catalog: catalog, canBindPrivilegedPorts: false)
        let byName = Dictionary(uniqueKeysWithValues: plan.services.map { ($0.descriptor.name, $0) })
        XCTAssertEqual(byName["pop3s"]?.port, 10_995, "the port is its own, not pop3's 0")
        XCTAssertEqual(byName["smtps"]?.enabled, true, "enabled is not inherited")
        guard case .map(let entries, _)? = byName["pop3s"]?.options else { return XCTFail("no options") }
        let keys = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(keys["auth_delay"], .scalar("2", line: 0), "its own key wins")
        XCTAssertNotNil(keys["users"], "pop3's users are pop3s's")
        XCTAssertNil(keys["port"])
    }
}
