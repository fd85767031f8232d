import CInetSupport
import Foundation
@testable import InetCore
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class SupervisorPartsTests: XCTestCase {
    let catalog = ["echo", "discard", "daytime", "qotd", "chargen", "time", "ftp", "smtp", "dns", "http", "pop3", "snmp", "https"]

    func testDefaultGroupsAreOneWorkerPerFamilyWithoutDisabledServices() {
        let running = catalog.filter { $0 != "https" && $0 != "qotd" }
        let groups = WorkerGroups.plan(config: [], running: running, catalog: catalog)
        XCTAssertEqual(groups.map(\.name), ["simple", "http", "dns", "mail", "ftp", "snmp"])
        XCTAssertEqual(groups[0].services, ["echo", "discard", "daytime", "chargen", "time"])
        XCTAssertEqual(groups[1].services, ["http"])
        XCTAssertEqual(groups[3].services, ["smtp", "pop3"])
    }

    func testConfiguredGroupsTakeServicesFromTheDefaultsAndEmptyGroupsVanish() {
        let groups = WorkerGroups.plan(config: [("small", ["dns", "snmp", "echo"])], running: ["dns", "snmp", "echo", "http"], catalog: catalog)
        XCTAssertEqual(groups, [WorkerGroup(name: "small", services: ["dns", "snmp", "echo"]), WorkerGroup(name: "http", services: ["http"])])
        // A service no group names gets a worker of its own, even where a group took its name.
        let renamed = WorkerGroups.plan(config: [("http", ["echo"])], running: ["echo", "http", "https"], catalog: catalog)
        XCTAssertEqual(renamed.map(\.name), ["http", "http-1", "https"])
        XCTAssertEqual(Set(renamed.flatMap(\.services)), ["echo", "http", "https"])
    }

    func testConfigKeysOfTheSupervisorAreChecked() throws {
        let descriptors = catalog.map { ServiceDescriptor(name: $0, wellKnownPort: 7, transports: [.tcp], summary: "") { _ in UnconfiguredService(name: "x") } }
        let config = try HostConfig.parse(yaml: "user: www-data\ngroup: www-data\nisolation: none\nworkers:\n  edge: [http, https]\n", file: "c.yaml", catalog: descriptors)
        XCTAssertEqual(config.user, "www-data")
        XCTAssertEqual(config.isolation, Isolation.none)
        XCTAssertEqual(config.workers.map(\.name), ["edge"])
        XCTAssertThrowsError(try HostConfig.parse(yaml: "isolation: threads\n", file: "c.yaml", catalog: descriptors)) { error in
            XCTAssertTrue("\(error)".contains("c.yaml:1"), "\(error)")
        }
        XCTAssertThrowsError(try HostConfig.parse(yaml: "workers:\n  a: [dns]\n  b: [dns]\n", file: "c.yaml", catalog: descriptors)) { error in
            XCTAssertTrue("\(error)".contains("already in worker 'a'"), "\(error)")
        }
        XCTAssertThrowsError(try HostConfig.parse(yaml: "workers:\n  a: [gopher]\n", file: "c.yaml", catalog: descriptors))
        XCTAssertThrowsError(try HostConfig.parse(yaml: "user: \"a b\"\n", file: "c.yaml", catalog: descriptors))
    }

    func testTheSharedRegionIsOneSetOfCountersForEveryProcessThatMapsIt() throws {
        let region = try SharedRegion.create()
        defer { close(region.descriptor) }
        XCTAssertGreaterThanOrEqual(region.descriptor, 256, "clear of the descriptors a worker receives")
        try region.ensureEntries([("dns", .udp), ("dns", .tcp), ("http", .tcp)])
        try region.ensureEntries([("dns", .udp)])  // idempotent
        let attached = try SharedRegion.attach(descriptor: region.descriptor)
        region.counters(service: "dns", transport: .udp)!.datagramsIn.wrappingAdd(3)
        attached.counters(service: "dns", transport: .udp)!.datagramsIn.wrappingAdd(4)
        XCTAssertEqual(region.counters(service: "dns", transport: .udp)!.snapshot().datagramsIn, 7)
        XCTAssertEqual(attached.counters(service: "http", transport: .tcp)!.snapshot().datagramsIn, 0)
        XCTAssertNil(attached.counters(service: "gopher", transport: .tcp))
        XCTAssertEqual(attached.started, region.started)

        let listing = [
            ServiceListing(name: "dns", enabled: true, state: "backoff", listeners: [ListenerStatus(transport: .udp, address: "127.0.0.1:53", port: 53)]),
            ServiceListing(name: "http", enabled: false, state: "disabled", listeners: []),
        ]
        let before = attached.listingGeneration
        region.publish(listing)
        XCTAssertEqual(attached.listing(), listing)
        XCTAssertNotEqual(attached.listingGeneration, before)

        let directory = HostDirectory()
        directory.attach(region: attached)
        let services = directory.services()
        XCTAssertEqual(services.map(\.name), ["dns", "http"])
        XCTAssertEqual(services[0].state, "backoff")
        region.counters(service: "dns", transport: .tcp)!.restarts.wrappingAdd(2)
        XCTAssertEqual(directory.services()[0].restarts, 2)
    }

    func testARegionOfAnotherKindIsRefused() throws {
        let fd = memfdLike()
        defer { close(fd) }
        XCTAssertThrowsError(try SharedRegion.attach(descriptor: fd))
    }

    private func memfdLike() -> Int32 {
        var name = Array("/tmp/inetkit-region-XXXXXX".utf8CString)
        let fd = mkstemp(&name)
        unlink(String(cString: name))
        _ = ftruncate(fd, 4096)
        return fd
    }

    func testSocketActivationReadsNamesAndRejectsWhatIsNotASocket() throws {
        XCTAssertNil(try SocketActivation.inherited(environment: [:]))
        XCTAssertNil(try SocketActivation.inherited(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "1"]), "for another process")
        XCTAssertThrowsError(try SocketActivation.inherited(environment: ["LISTEN_FDS": "many"]))
        XCTAssertThrowsError(try SocketActivation.inherited(environment: ["LISTEN_FDS": "99999"]))
        let bound = try SocketBinder.bind(service: "echo", transport: .udp, address: BindAddress(host: "127.0.0.1", optional: false), port: 0)
        defer { bound.close() }
        XCTAssertGreaterThanOrEqual(bound.descriptor, 256)
        XCTAssertNotEqual(bound.port, 0)
        let described = try XCTUnwrap(ListeningSocket.describe(bound.descriptor, service: "echo"))
        XCTAssertEqual(described.transport, .udp)
        XCTAssertEqual(described.port, bound.port)
        XCTAssertEqual(described.address.host, "127.0.0.1")
    }

    func testOneServiceBindsEveryTransportOnOnePort() throws {
        let sockets = try SocketBinder.bind(service: "dns", transports: [.udp, .tcp], port: 0,
                                            addresses: [BindAddress(host: "127.0.0.1", optional: false)], udpSockets: 2)
        defer { for socket in sockets { socket.close() } }
        XCTAssertEqual(sockets.map(\.transport), [.udp, .udp, .tcp])
        XCTAssertEqual(Set(sockets.map(\.port)).count, 1)
    }

    func testDatagramsGoToTheSocketOfTheCPUReceivingThem() throws {
        try XCTSkipIf(sysconf(Int32(_SC_NPROCESSORS_ONLN)) < 2, "needs two CPUs")
        let sockets = try SocketBinder.bind(service: "dns", transports: [.udp], port: 0,
                                            addresses: [BindAddress(host: "127.0.0.1", optional: false)], udpSockets: 2, spreadByCPU: true)
        defer { for socket in sockets { socket.close() } }
        // From one source socket, sent by a thread held on CPU 0, then on CPU 1: over loopback
        // the datagram is received on the sender's CPU, so each lands on that CPU's socket
        // (hashing the source would put them all on one socket).
        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(sender) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(sockets[0].port).bigEndian)
        target.sin_addr.s_addr = inet_addr("127.0.0.1")
        func send(onCPU cpu: Int, count: Int) {
            let destination = target
            let done = DispatchSemaphore(value: 0)
            Thread {
                defer { done.signal() }
                guard inetkit_pin_thread_to_cpu(Int32(cpu)) == 0 else { return }
                var address = destination
                for index in 0..<count {
                    var byte = UInt8(truncatingIfNeeded: index)
                    _ = withUnsafePointer(to: &address) { pointer in
                        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(sender, &byte, 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                }
            }.start()
            done.wait()
        }
        func received(_ socket: ListeningSocket) -> Int {
            var count = 0
            var byte: UInt8 = 0
            while recv(socket.descriptor, &byte, 1, Int32(MSG_DONTWAIT)) >= 0 { count += 1 }
            return count
        }
        send(onCPU: 0, count: 20)
        XCTAssertEqual([received(sockets[0]), received(sockets[1])], [20, 0])
        send(onCPU: 1, count: 30)
        XCTAssertEqual([received(sockets[0]), received(sockets[1])], [0, 30])
    }

    func testRootIsNeverTheAccountWorkersRunAs() {
        XCTAssertThrowsError(try RunAccount.resolve(user: "root", group: nil, environment: [:]))
        XCTAssertThrowsError(try RunAccount.resolve(user: "no-such-user-here", group: nil, environment: [:]))
        let sudo = try? RunAccount.resolve(user: nil, group: nil, environment: ["SUDO_UID": "4242", "SUDO_GID": "4343"])
        XCTAssertEqual(sudo?.uid, 4242)
        XCTAssertEqual(sudo?.gid, 4343)
        let fallback = try? RunAccount.resolve(user: nil, group: nil, environment: ["SUDO_UID": "0"])
        XCTAssertNotNil(fallback)
        XCTAssertNotEqual(fallback?.uid, 0)
    }
}
