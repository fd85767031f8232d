import InetCore
import InetLine
import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import InetFTP

/// Command replies of the FTP state machine that need no data connection.
final class FTPSessionTests: XCTestCase {
    var root: String!
    var session: FTPSession!

    override func setUp() {
        root = "/tmp/inetkit-ftp-session-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(root, 0o755)
        mkdir(root + "/pub", 0o755)
        mkdir(root + "/pub/docs", 0o755)
        mkdir(root + "/home", 0o755)
        FileManagerLite.write("hello\n", to: root + "/pub/docs/a.txt")
        var settings = FTPSettings()
        settings.anonymousRoot = root + "/pub"
        settings.users = ["alice": FTPUser(name: "alice", password: "pw", home: root + "/home", writable: true, anonymous: false)]
        settings.maxLoginFailures = 2
        session = FTPSession(settings: settings, tlsAvailable: false, logger: .init(label: "test"))
        let peer = try? SocketAddress(ipAddress: "127.0.0.1", port: 40000)
        let local = try? SocketAddress(ipAddress: "127.0.0.1", port: 21)
        _ = session.start(context: LineSessionContext(peer: peer, local: local))
    }

    override func tearDown() {
        _ = try? FileManagerLite.removeTree(root)
    }

    /// The replies to one line, with its file requests run at once (other effects show as
    /// `<wait>`, their outcome not given).
    func send(_ line: String) -> String {
        var buffer = ByteBuffer()
        buffer.writeString(line)
        var out = ""
        var actions = session.receive(line: buffer, ending: .crlf)
        while !actions.isEmpty {
            var next: [LineAction<FTPEffect>] = []
            for action in actions {
                switch action {
                case .reply(let text): out += text
                case .perform(.files(let request)): next += session.complete(.files(FTPFiles.perform(request)))
                case .perform: out += "<wait>"
                default: break
                }
            }
            actions = next
        }
        return out
    }

    func testLoginAndCommandsBeforeIt() {
        XCTAssertEqual(send("PWD"), "530 Please login with USER and PASS.\r\n")
        XCTAssertEqual(send("RETR x"), "530 Please login with USER and PASS.\r\n")
        XCTAssertEqual(send("SYST"), "215 UNIX Type: L8\r\n")
        XCTAssertTrue(send("FEAT").hasPrefix("211-Features:\r\n EPRT\r\n"))
        XCTAssertEqual(send("PASS x"), "503 Login with USER first.\r\n")
        XCTAssertEqual(send("USER alice"), "331 Please specify the password.\r\n")
        XCTAssertEqual(send("PASS wrong"), "<wait>", "a wrong password is answered after the delay")
        XCTAssertNil(session.account)
        XCTAssertEqual(session.complete(.delayed).count, 1, "530, and the connection stays")
        XCTAssertEqual(send("USER alice"), "331 Please specify the password.\r\n")
        XCTAssertEqual(send("PASS pw"), "230 Login successful.\r\n")
        XCTAssertEqual(send("PWD"), "257 \"/\" is the current directory\r\n")
        XCTAssertEqual(send("ACCT x"), "502 ACCT not implemented.\r\n")
    }

    func testNavigationAndInformation() {
        _ = send("USER anonymous")
        XCTAssertEqual(send("PASS guest@"), "230 Login successful.\r\n")
        XCTAssertEqual(send("CWD docs"), "250 Directory successfully changed.\r\n")
        XCTAssertEqual(send("PWD"), "257 \"/docs\" is the current directory\r\n")
        XCTAssertEqual(send("SIZE a.txt"), "213 6\r\n")
        XCTAssertTrue(send("MDTM a.txt").hasPrefix("213 20"))
        XCTAssertTrue(send("MLST a.txt").contains("type=file;size=6;"))
        XCTAssertEqual(send("CWD a.txt"), "550 Not a directory.\r\n")
        XCTAssertEqual(send("CDUP"), "250 Directory successfully changed.\r\n")
        XCTAssertEqual(send("CWD ../../.."), "250 Directory successfully changed.\r\n")
        XCTAssertEqual(send("PWD"), "257 \"/\" is the current directory\r\n", "`..` stops at the root")
        XCTAssertEqual(send("SIZE missing"), "550 No such file or directory.\r\n")
        XCTAssertEqual(send("TYPE A"), "200 Switching to ASCII mode.\r\n")
        XCTAssertEqual(send("TYPE E"), "504 TYPE not supported.\r\n")
        XCTAssertEqual(send("MODE B"), "504 Only stream mode is supported.\r\n")
        XCTAssertEqual(send("STRU F"), "200 Structure set to F.\r\n")
        XCTAssertEqual(send("REST 100"), "350 Restart position accepted (100).\r\n")
        XCTAssertEqual(send("ABOR"), "225 No transfer to abort.\r\n")
        XCTAssertEqual(send("RETR docs/a.txt"), "425 Use PORT or PASV first.\r\n")
        XCTAssertEqual(send("OPTS UTF8 ON"), "200 Always in UTF8 mode.\r\n")
    }

    func testAnonymousCannotWrite() {
        _ = send("USER ftp")
        _ = send("PASS x")
        for command in ["STOR x", "APPE x", "DELE docs/a.txt", "MKD new", "RMD docs", "RNFR docs/a.txt"] {
            XCTAssertEqual(send(command), "550 Permission denied.\r\n", command)
        }
    }

    func testNoBounce() {
        _ = send("USER ftp")
        _ = send("PASS x")
        XCTAssertEqual(send("PORT 192,0,2,7,200,10"), "504 Data connections go only to the client's own address.\r\n")
        XCTAssertEqual(send("EPRT |1|192.0.2.7|51210|"), "504 Data connections go only to the client's own address.\r\n")
        XCTAssertEqual(send("PORT 127,0,0,1,0,25"), "504 Ports below 1024 are refused.\r\n")
        XCTAssertEqual(send("PORT 127,0,0,1,200,10"), "200 PORT command successful. Consider using PASV.\r\n")
        XCTAssertEqual(send("EPRT |1|127.0.0.1|51210|"), "200 EPRT command successful. Consider using PASV.\r\n")
        XCTAssertEqual(send("PORT 1,2,3"), "501 Bad PORT argument.\r\n")
        XCTAssertEqual(send("EPRT |3|x|1|"), "522 Network protocol not supported, use (1,2)\r\n", "RFC 2428 2")
        for argument in ["|1|127.0.0.1|70000|", "|1|127.0.0.1|-1|", "|1|127.0.0.1|0|", "|1|127.0.0.1|99999999999999999999|", "|2|127.0.0.1|2000|"] {
            XCTAssertEqual(send("EPRT " + argument), "501 Bad EPRT argument.\r\n", argument)
        }
        XCTAssertEqual(send("EPSV ALL"), "200 EPSV ALL ok.\r\n")
        XCTAssertEqual(send("PORT 127,0,0,1,200,10"), "503 EPSV ALL is in force.\r\n")
    }

    func testUserChangesFiles() {
        _ = send("USER alice")
        _ = send("PASS pw")
        XCTAssertEqual(send("MKD sub"), "257 \"/sub\" created\r\n")
        XCTAssertEqual(send("MKD ../../escape"), "257 \"/escape\" created\r\n", "`..` stops at the root: the folder is made inside it")
        var info = stat()
        XCTAssertEqual(lstat(root + "/home/escape", &info), 0)
        XCTAssertNotEqual(lstat(root + "/escape", &info), 0)
        XCTAssertEqual(send("RNFR sub"), "350 Ready for RNTO.\r\n")
        XCTAssertEqual(send("RNTO renamed"), "250 Rename successful.\r\n")
        XCTAssertEqual(send("RNTO again"), "503 RNFR required first.\r\n")
        XCTAssertEqual(send("RMD renamed"), "250 Remove directory operation successful.\r\n")
        XCTAssertEqual(send("DELE nothing"), "550 No such file or directory.\r\n")
        XCTAssertEqual(send("MKD a\u{0}b"), "500 Bad characters in command.\r\n")
        // Found by the ftp-session fuzzer: a bare CR in the path ended the 257 reply's line early.
        XCTAssertEqual(send("MKD d\rX"), "500 Bad characters in command.\r\n")
        XCTAssertEqual(send("MKD d\u{7F}"), "500 Bad characters in command.\r\n")
    }

    func testPasswordsAreMaskedInTheTranscriptAndLoginsReported() {
        XCTAssertEqual(session.transcript(of: ByteBuffer(string: "PASS hunter2 with spaces")), "PASS ****")
        XCTAssertEqual(session.transcript(of: ByteBuffer(string: "pass x")), "pass ****")
        XCTAssertEqual(session.transcript(of: ByteBuffer(string: "USER alice")), "USER alice")
        XCTAssertEqual(session.transcript(of: ByteBuffer(string: "PASS")), "PASS")
        _ = session.receive(line: ByteBuffer(string: "USER alice"), ending: .crlf)
        let actions = session.receive(line: ByteBuffer(string: "PASS wrong"), ending: .crlf)
        let events = actions.compactMap { if case .event(let event) = $0 { return event } else { return nil } }
        XCTAssertEqual(events.map(\.kind), ["ftp.login"])
        XCTAssertEqual(events[0].fields.map(\.0), ["user", "ok", "password"])
        // The password goes only as a secret: the emitter records it with report.show_credentials alone.
        guard case .secret("wrong") = events[0].fields[2].1 else { return XCTFail("the password is not marked secret: \(events[0].fields)") }
        for (_, value) in events[0].fields.prefix(2) {
            if case .string(let text) = value { XCTAssertFalse(text.contains("wrong")) }
        }
    }
}

