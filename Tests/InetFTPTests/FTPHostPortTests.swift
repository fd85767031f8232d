@testable import InetFTP
import XCTest

final class FTPHostPortTests: XCTestCase {
    func testPORT() throws {
        XCTAssertEqual(try FTPHostPort.parsePORT("127,0,0,1,200,10"), FTPHostPort(host: "127.0.0.1", port: 51210))
        XCTAssertEqual(try FTPHostPort.parsePORT(" 127, 0,0,1 ,0,1"), FTPHostPort(host: "127.0.0.1", port: 1))
        for argument in ["127,0,0,1,256,1", "127,0,0,1,-1,1", "127,0,0,1,0,0", "1,2,3", "127,0,0,1,1,99999999999999999999",
                         "127,0,0,1,1,2,3", "a,b,c,d,e,f", "127,0,0,1,1,+2", "", ",,,,,", "127,0,0,1,1,\u{0663}"] {
            XCTAssertThrowsError(try FTPHostPort.parsePORT(argument), argument)
        }
    }

    /// Issue 11: `EPRT |1|127.0.0.1|70000|` (or port -1) reached SocketAddress unchecked.
    func testEPRTPortsAreRangeChecked() throws {
        XCTAssertEqual(try FTPHostPort.parseEPRT("|1|132.235.1.2|6275|"), FTPHostPort(host: "132.235.1.2", port: 6275))
        XCTAssertEqual(try FTPHostPort.parseEPRT("|2|::1|65535|"), FTPHostPort(host: "::1", port: 65535))
        XCTAssertEqual(try FTPHostPort.parseEPRT("!2!fe80::1!1!"), FTPHostPort(host: "fe80::1", port: 1))
        for argument in ["|1|127.0.0.1|70000|", "|1|127.0.0.1|-1|", "|1|127.0.0.1|0|", "|1|127.0.0.1|65536|", "|1|127.0.0.1|+80|",
                         "|1|127.0.0.1|99999999999999999999999|", "|1|127.0.0.1||", "|1||80|", "|1|::1|80|", "|2|127.0.0.1|80|",
                         "|1|999.0.0.1|80|", "|1|127.0.0.1|80", "1|127.0.0.1|80|", "", " |1|127.0.0.1|80|", "|1|127.0.0.1|80|x"] {
            XCTAssertThrowsError(try FTPHostPort.parseEPRT(argument), argument) { error in
                XCTAssertEqual(error as? FTPHostPort.Failure, .syntax, argument)
            }
        }
        XCTAssertThrowsError(try FTPHostPort.parseEPRT("|3|x|1|")) { XCTAssertEqual($0 as? FTPHostPort.Failure, .family) }
    }
}
