import InetCore
import Logging
import NIOCore
import XCTest

/// A stand-in service so InetCore's config handling is tested without any protocol module.
private struct NullService: InetService {}

private let catalog = [
    ServiceDescriptor(name: "alpha", wellKnownPort: 7, transports: [.tcp, .udp], optionKeys: ["file"], summary: "test") { _ in NullService() },
    ServiceDescriptor(name: "beta", wellKnownPort: 13, transports: [.tcp], summary: "test") { _ in NullService() },
]

final class HostConfigTests: XCTestCase {
    private func parse(_ yaml: String) throws -> HostConfig {
        try HostConfig.parse(yaml: yaml, file: "test.yaml", catalog: catalog)
    }

    private func assertConfigError(_ yaml: String, key: String?, line: Int?, contains text: String, file: StaticString = #filePath, lineNumber: UInt = #line) {
        do {
            _ = try parse(yaml)
            XCTFail("expected a config error", file: file, line: lineNumber)
        } catch {
            guard let error = error as? ConfigError else { return XCTFail("wrong error type \(error)", file: file, line: lineNumber) }
            XCTAssertEqual(error.key, key, file: file, line: lineNumber)
            if let line { XCTAssertEqual(error.line, line, file: file, line: lineNumber) }
            XCTAssertTrue(error.description.contains(text), "\(error.description)", file: file, line: lineNumber)
        }
    }

    func testEmptyFileGivesDefaults() throws {
        let config = try parse("")
        XCTAssertNil(config.bind)
        XCTAssertNil(config.portOffset)
        XCTAssertEqual(config.shutdownGrace, 10)
        XCTAssertEqual(config.limits, Limits())
        XCTAssertEqual(Limits().maxConnections, 1024)
    }

    func testFullConfigParses() throws {
        let config = try parse("""
            bind: [127.0.0.1, "::1"]
            port_offset: 20000
            data_dir: /tmp/x
            shutdown_grace: 2.5
            log_level: debug
            log_format: json
            limits: { max_connections: 50, idle_timeout: 30s, udp_rate: 10, udp_burst: 20, max_pending_output: 65536 }
            services:
              alpha: { enabled: false, port: 7007, transports: [udp], idle_timeout: 500ms, file: q.txt }
              beta: {}
            """)
        XCTAssertEqual(config.bind, ["127.0.0.1", "::1"])
        XCTAssertEqual(config.portOffset, 20_000)
        XCTAssertEqual(config.shutdownGrace, 2.5)
        XCTAssertEqual(config.logLevel?.rawValue, "debug")
        XCTAssertEqual(config.logFormat, .json)
        XCTAssertEqual(config.limits.maxConnections, 50)
        XCTAssertEqual(config.limits.idleTimeout, 30)
        XCTAssertEqual(config.limits.maxPendingOutput, 65_536)
        let plan = try HostPlan.make(config: config, overrides: HostOverrides(), catalog: catalog, canBindPrivilegedPorts: true)
        let alpha = plan.services[0]
        XCTAssertFalse(alpha.enabled)
        XCTAssertEqual(alpha.port, 7007)
        XCTAssertEqual(alpha.transports, [.udp])
        XCTAssertEqual(alpha.limits.idleTimeout, 0.5)
        XCTAssertEqual(alpha.limits.maxConnections, 50, "service inherits the limits section")
        XCTAssertEqual(plan.services[1].port, 20_013)
    }

    func testMaxPendingOutputOutOfRangeNamesItsLine() {
        XCTAssertThrowsError(try parse("limits:\n  max_pending_output: 10\n")) { error in
            XCTAssertTrue("\(error)".contains("max_pending_output"), "\(error)")
            XCTAssertTrue("\(error)".contains(":2"), "\(error)")
        }
    }

    func testUnknownTopLevelKeyNamesKeyAndLine() {
        assertConfigError("bind: [127.0.0.1]\nport_ofset: 3\n", key: "port_ofset", line: 2, contains: "unknown key")
    }

    func testUnknownServiceKeyIsAnError() {
        assertConfigError("services:\n  alpha:\n    prot: 7\n", key: "services.alpha.prot", line: 3, contains: "unknown key")
    }

    func testUnknownServiceIsAnError() {
        assertConfigError("services:\n  gamma: {}\n", key: "services.gamma", line: 2, contains: "unknown service")
    }

    func testBadValuesNameTheKey() {
        assertConfigError("port_offset: lots\n", key: "port_offset", line: 1, contains: "whole number")
        assertConfigError("shutdown_grace: soon\n", key: "shutdown_grace", line: 1, contains: "duration")
        assertConfigError("limits:\n  max_connections: 0\n", key: "limits.max_connections", line: 2, contains: "out of range")
        assertConfigError("bind: [localhost]\n", key: "bind", line: 1, contains: "numeric")
        assertConfigError("log_format: xml\n", key: "log_format", line: 1, contains: "text or json")
        assertConfigError("services:\n  alpha: { enabled: maybe }\n", key: "services.alpha.enabled", line: 2, contains: "true or false")
        assertConfigError("services:\n  alpha: { port: 70000 }\n", key: "services.alpha.port", line: 2, contains: "out of range")
    }

    func testInvalidYAMLReportsLine() {
        assertConfigError("bind: [127.0.0.1\nport_offset: 3\n", key: nil, line: nil, contains: "not valid YAML")
    }

    func testTransportNotSpokenByServiceIsAnError() throws {
        let config = try parse("services:\n  beta: { transports: [udp] }\n")
        XCTAssertThrowsError(try HostPlan.make(config: config, overrides: HostOverrides(), catalog: catalog, canBindPrivilegedPorts: true)) { error in
            XCTAssertEqual((error as? ConfigError)?.key, "services.beta.transports")
        }
    }

    func testServicesFilterRunsOnlyThose() throws {
        let plan = try HostPlan.make(config: HostConfig(), overrides: HostOverrides(onlyServices: ["beta"]), catalog: catalog, canBindPrivilegedPorts: false)
        XCTAssertEqual(plan.services.filter(\.enabled).map(\.descriptor.name), ["beta"])
        XCTAssertEqual(plan.services[1].port, 10_013)
        XCTAssertThrowsError(try HostPlan.make(config: HostConfig(), overrides: HostOverrides(onlyServices: ["nope"]), catalog: catalog, canBindPrivilegedPorts: false))
    }

    func testCommandLineBindAndOffsetOverrideFile() throws {
        let config = try parse("bind: [127.0.0.1]\nport_offset: 1000\n")
        let plan = try HostPlan.make(config: config, overrides: HostOverrides(bind: ["::1"], portOffset: 30_000), catalog: catalog, canBindPrivilegedPorts: true)
        XCTAssertEqual(plan.bindAddresses.map(\.host), ["::1"])
        XCTAssertEqual(plan.services[0].port, 30_007)
    }

    func testDefaultBindIsLoopbackBothFamilies() throws {
        let plan = try HostPlan.make(config: HostConfig(), overrides: HostOverrides(), catalog: catalog, canBindPrivilegedPorts: true)
        XCTAssertEqual(plan.bindAddresses.map(\.host), ["127.0.0.1", "::1"])
    }
}
