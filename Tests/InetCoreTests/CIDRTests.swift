import NIOCore
import XCTest
@testable import InetCore

final class CIDRTests: XCTestCase {
    /// `contains` reads the socket address's own bytes: IPv4, IPv6, prefixes that end inside a
    /// byte, and IPv4-mapped IPv6 sources against IPv4 blocks.
    func testContainsReadsTheAddressItself() throws {
        func address(_ text: String) throws -> SocketAddress { try SocketAddress(ipAddress: text, port: 161) }
        let block = try XCTUnwrap(CIDR("192.0.2.0/23"))
        XCTAssertTrue(block.contains(try address("192.0.2.1")))
        XCTAssertTrue(block.contains(try address("192.0.3.255")))
        XCTAssertFalse(block.contains(try address("192.0.4.0")))
        XCTAssertFalse(block.contains(try address("192.0.1.255")))
        XCTAssertTrue(block.contains(try address("::ffff:192.0.3.7")), "IPv4-mapped source")
        XCTAssertFalse(block.contains(try address("2001:db8::1")))
        let one = try XCTUnwrap(CIDR("127.0.0.1"))
        XCTAssertTrue(one.contains(try address("127.0.0.1")))
        XCTAssertFalse(one.contains(try address("127.0.0.2")))
        let v6 = try XCTUnwrap(CIDR("2001:db8:80::/41"))
        XCTAssertTrue(v6.contains(try address("2001:db8:80::1")))
        XCTAssertTrue(v6.contains(try address("2001:db8:ff:ffff::1")))
        XCTAssertFalse(v6.contains(try address("2001:db8:100::1")))
        XCTAssertFalse(v6.contains(try address("192.0.2.1")), "an IPv4 source against an IPv6 block")
        XCTAssertTrue(try XCTUnwrap(CIDR("0.0.0.0/0")).contains(try address("203.0.113.9")))
        XCTAssertTrue(try XCTUnwrap(CIDR("::/0")).contains(try address("::1")))
    }
}
