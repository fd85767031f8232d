import Foundation
@testable import InetHTTP
import InetCore
import XCTest

final class StatusPagesTests: XCTestCase {
    private var services: [ServiceStatus] {
        var tcp = ServiceCounters.Snapshot(service: "echo", transport: .tcp, connections: 3, activeConnections: 1, refusedConnections: 0, datagramsIn: 0, datagramsOut: 0, datagramsDropped: 0, bytesIn: 10, bytesOut: 10, errors: 1, distinctPeers: 1)
        var udp = tcp
        udp.transport = .udp
        udp.connections = 0
        udp.datagramsIn = 7
        tcp.service = "echo"
        return [ServiceStatus(name: "echo", enabled: true, listeners: [ListenerStatus(transport: .tcp, address: "127.0.0.1:10007", port: 10007)], counters: [tcp, udp])]
    }

    func testJSONIsValidAndComplete() throws {
        let text = StatusPages.json(services, uptime: 12.7)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["uptime_seconds"] as? Int, 12)
        let service = try XCTUnwrap((object["services"] as? [[String: Any]])?.first)
        XCTAssertEqual(service["name"] as? String, "echo")
        XCTAssertEqual((service["listeners"] as? [[String: Any]])?.first?["port"] as? Int, 10007)
        let counters = try XCTUnwrap(service["counters"] as? [[String: Any]])
        XCTAssertEqual(counters.count, 2)
        XCTAssertEqual(counters[0]["connections"] as? Int, 3)
        XCTAssertEqual(counters[1]["datagrams_in"] as? Int, 7)
    }

    func testMetricsFollowPrometheusTextFormat() {
        let text = StatusPages.metrics(services, uptime: 5)
        XCTAssertTrue(text.contains("# TYPE inetkit_connections_total counter\n"))
        XCTAssertTrue(text.contains("inetkit_connections_total{service=\"echo\",transport=\"tcp\"} 3\n"))
        XCTAssertTrue(text.contains("inetkit_datagrams_received_total{service=\"echo\",transport=\"udp\"} 7\n"))
        XCTAssertTrue(text.contains("inetkit_service_up{service=\"echo\"} 1\n"))
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            XCTAssertNotNil(line.range(of: #"^[a-z_]+(\{[^}]*\})? \d+$"#, options: .regularExpression), String(line))
        }
    }

    func testDashboardPageListsEveryServiceAndTransport() {
        let html = Dashboard.page(services, uptime: 5, statusPath: "/_inetkit")
        XCTAssertTrue(html.contains("<td>echo</td><td>running</td><td>tcp</td><td>127.0.0.1:10007</td>"), html)
        XCTAssertTrue(html.contains("<td>echo</td><td>running</td><td>udp</td><td>not running</td>"), html)
        XCTAssertTrue(html.contains("href=\"/_inetkit/metrics\""))
        XCTAssertTrue(html.contains("<script src=\"/_inetkit/dashboard.js\" defer></script>"))
        // Nothing inline: the policy allows no inline script or style.
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertFalse(html.contains("<style"))
        XCTAssertFalse(html.contains(" style="))
        XCTAssertNil(html.range(of: #"\son[a-z]+="#, options: .regularExpression), "no inline event handlers")
    }

    func testDashboardPolicyAllowsOnlyItsOwnScript() {
        let policy = Dashboard.policy
        XCTAssertTrue(policy.hasPrefix("default-src 'none'"))
        XCTAssertTrue(policy.contains("script-src 'self';"))
        XCTAssertFalse(policy.contains("unsafe"))
        XCTAssertTrue(policy.contains("frame-ancestors 'none'"))
        XCTAssertTrue(MailAPI.messagePolicy.hasPrefix("sandbox;"))
        XCTAssertFalse(MailAPI.messagePolicy.contains("script-src"))
    }

    /// The binary carries the dashboard's files as they are in the tree (scripts/embed-dashboard).
    func testEmbeddedDashboardMatchesItsSources() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/InetHTTP/Dashboard").standardized
        let script = try String(contentsOf: folder.appendingPathComponent("dashboard.js"), encoding: .utf8)
        let style = try String(contentsOf: folder.appendingPathComponent("dashboard.css"), encoding: .utf8)
        XCTAssertEqual(Dashboard.asset("dashboard.js")?.body, script, "run scripts/embed-dashboard")
        XCTAssertEqual(Dashboard.asset("dashboard.css")?.body, style, "run scripts/embed-dashboard")
        XCTAssertNil(Dashboard.asset("other.js"))
        // Text only: what peers sent is never parsed as HTML by the script.
        for forbidden in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            XCTAssertFalse(script.contains(forbidden), forbidden)
        }
    }
}
