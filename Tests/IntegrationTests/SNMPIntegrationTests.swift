import Foundation
import InetCore
import InetSNMP
import InetSimple
import NIOCore
import NIOPosix
import XCTest

/// The agent in a real host on loopback, asked by InetKit's own manager.
final class SNMPIntegrationTests: XCTestCase {
    func testManagerWalksTheServiceTableAndSets() async throws {
        let root = NSTemporaryDirectory() + "inetkit-snmp-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let catalog = SimpleServices.catalog + [SNMPService.descriptor]
        let yaml = """
            data_dir: \(root)
            services:
              snmp: { communities: [{ name: public, access: read }, { name: secret, access: write }] }
            """
        let plan = try HostHarness.plan(catalog: catalog, yaml: yaml, only: ["snmp", "echo"])
        XCTAssertEqual(plan.services.first { $0.descriptor.name == "snmp" }?.limits.udpRate, 2000, "SNMP's own default rate")
        let host = InetHost(plan: plan, group: MultiThreadedEventLoopGroup.singleton, logger: HostHarness.quietLogger)
        try await host.start()
        let port = host.port(of: "snmp", transport: .udp)!
        let echoPort = host.port(of: "echo", transport: .tcp)!

        let reader = SNMPClient(host: "127.0.0.1", port: port)
        let rows = try await reader.session { try await $0.walk(MIBOID.inetkitServiceEntry.appending(2), bulk: true) }
        let names = rows.map { $0.value }
        XCTAssertTrue(names.contains(.string("echo")) && names.contains(.string("snmp")), "\(names)")
        let echoRow = try XCTUnwrap(rows.first { $0.value == .string("echo") }?.oid.components.last)
        let port4 = try await reader.session { try await $0.get([MIBOID.inetkitServiceEntry.appending(4, echoRow)]) }
        XCTAssertEqual(port4.first?.value, .integer(Int64(echoPort)))
        // GETNEXT walk and GETBULK walk see the same variables (sysUpTime aside).
        let slow = try await reader.session { try await $0.walk(MIBOID.system) }
        let fast = try await reader.session { try await $0.walk(MIBOID.system, bulk: true) }
        XCTAssertEqual(slow.map(\.oid), fast.map(\.oid))

        let writer = SNMPClient(host: "127.0.0.1", port: port, community: "secret")
        _ = try await writer.session { try await $0.set([VarBind(MIBOID.sysLocation.appending(0), .string("bench 3"))]) }
        let location = try await reader.session { try await $0.get([MIBOID.sysLocation.appending(0)]) }
        XCTAssertEqual(location.first?.value, .string("bench 3"))
        do {
            _ = try await reader.session { try await $0.set([VarBind(MIBOID.sysLocation.appending(0), .string("x"))]) }
            XCTFail("a read community cannot set")
        } catch let error as SNMPClientError {
            XCTAssertEqual(error.status, .noAccess)
        }
        let silent = SNMPClient(host: "127.0.0.1", port: port, community: "guess", timeout: 0.2, retries: 0)
        do {
            _ = try await silent.session { try await $0.get([MIBOID.sysName.appending(0)]) }
            XCTFail("a wrong community gets no answer")
        } catch let error as SNMPClientError {
            XCTAssertTrue(error.message.contains("no answer"), error.message)
        }
        await host.shutdown(grace: 1)
    }
}
