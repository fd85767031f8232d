import InetCore
import InetLine
import NIOCore
import NIOEmbedded
import NIOPosix
import XCTest

@testable import InetWho

final class FingerTests: XCTestCase {
    let directory = FingerDirectory(users: [
        .init(name: "alice", realName: "Alice Liddell", plan: "Down the rabbit hole.\nThen tea.\n"),
        .init(name: "bob", realName: "Bob Dobbs"),
    ])

    func testQueries() {
        XCTAssertEqual(FingerQuery.parse(Array("".utf8)), FingerQuery())
        XCTAssertEqual(FingerQuery.parse(Array("/W".utf8)), FingerQuery(verbose: true))
        XCTAssertEqual(FingerQuery.parse(Array("/W alice".utf8)), FingerQuery(verbose: true, user: "alice"))
        XCTAssertEqual(FingerQuery.parse(Array("alice@elsewhere.test".utf8)), FingerQuery(user: "alice", forward: true))
        XCTAssertEqual(FingerQuery.parse(Array("@a@b".utf8)), FingerQuery(forward: true))
        XCTAssertEqual(FingerQuery.parse([0x1b, 0x5b, 0x32, 0x4a] + Array("bob".utf8)).user, "[2Jbob", "escape bytes are dropped")
    }

    func testListShortAndLong() {
        let list = directory.answer(FingerQuery())
        XCTAssertTrue(list.hasPrefix("Login"), list)
        XCTAssertTrue(list.contains("alice       Alice Liddell\r\n"), list)
        XCTAssertFalse(list.contains("Plan"), list)
        let long = directory.answer(FingerQuery(verbose: true))
        XCTAssertTrue(long.contains("Login: alice"), long)
        XCTAssertTrue(long.contains("Plan:\r\nDown the rabbit hole.\r\nThen tea.\r\n"), long)
        XCTAssertTrue(long.contains("No Plan."), long)
        XCTAssertEqual(FingerDirectory().answer(FingerQuery()), "No one logged on.\r\n")
    }

    func testUserMatchingForwardingAndUnknown() {
        XCTAssertTrue(directory.answer(FingerQuery(user: "ALICE")).contains("Name: Alice Liddell"))
        XCTAssertTrue(directory.answer(FingerQuery(user: "dobbs")).contains("Login: bob"), "a word of the real name matches")
        XCTAssertEqual(directory.answer(FingerQuery(user: "root")), "finger: root: no such user.\r\n")
        XCTAssertTrue(directory.answer(FingerQuery(user: "alice", forward: true)).contains("refused"))
    }

    func testOutputIsPrintableAndBounded() {
        let hostile = FingerDirectory(users: [.init(name: "eve", realName: "Eve\u{1b}[31m", plan: String(repeating: "x", count: 5000) + "\n\u{07}bell\n" + String(repeating: "l\n", count: 500))],
                                      lineWidth: 80, planLines: 10)
        let answer = hostile.answer(FingerQuery(user: "eve"))
        for line in answer.split(separator: "\r\n") {
            XCTAssertLessThanOrEqual(line.utf8.count, 80)
            XCTAssertTrue(line.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }, "\(line)")
        }
        XCTAssertLessThanOrEqual(answer.components(separatedBy: "\r\n").count, 14)
    }

    func testSessionOverAChannel() throws {
        let channel = EmbeddedChannel()
        try FingerService(directory: directory).configureTCPConnection(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 79)).wait()
        try channel.writeInbound(ByteBuffer(string: "/W alice\r\n"))
        var out = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
        XCTAssertTrue(out.contains("Login: alice"), out)
        XCTAssertFalse(channel.isActive, "finger closes after the answer")
    }

    func testEachQueryIsReportedWithWhatWasTold() {
        func outcome(_ query: FingerQuery) -> String? {
            for (name, value) in FingerSession.event(query, directory: directory).fields where name == "outcome" {
                if case .string(let text) = value { return text }
            }
            return nil
        }
        XCTAssertEqual(FingerSession.event(FingerQuery(user: "dobbs"), directory: directory).kind, "finger.query")
        XCTAssertEqual(outcome(FingerQuery(user: "dobbs")), "told")
        XCTAssertEqual(outcome(FingerQuery(user: "root")), "no such user")
        XCTAssertEqual(outcome(FingerQuery(user: "alice", forward: true)), "forwarding refused")
        XCTAssertEqual(outcome(FingerQuery(verbose: true)), "listed 2 users")
    }

    func testConfigUsers() throws {
        func make(_ yaml: String) throws -> FingerService {
            let config = try HostConfig.parse(yaml: "services:\n  finger: \(yaml)\n", file: "t.yaml", catalog: [FingerService.descriptor])
            return try FingerService(ServiceOptions(reader: config.services["finger"], dataDirectory: "/tmp", configDirectory: ""))
        }
        let service = try make("{ users: [{ name: alice, real_name: Alice, plan: hi }] }")
        XCTAssertEqual(service.directory.users, [.init(name: "alice", realName: "Alice", plan: "hi")])
        XCTAssertThrowsError(try make("{ users: [{ name: 'a b' }] }"))
        XCTAssertThrowsError(try make("{ users: [{ name: a }, { name: A }] }"))
        XCTAssertThrowsError(try make("{ users: [{ name: a, password: x }] }"))
    }
}

final class IdentTests: XCTestCase {
    func testQueryParsing() {
        XCTAssertEqual(try IdentQuery.parse(Array("6191, 23".utf8)).get(), IdentQuery(serverPort: 6191, clientPort: 23))
        XCTAssertEqual(try IdentQuery.parse(Array("  6191 ,\t23  ".utf8)).get(), IdentQuery(serverPort: 6191, clientPort: 23))
        XCTAssertEqual(IdentQuery.parse(Array("0,23".utf8)), .failure(.invalidPort("0", "23")))
        XCTAssertEqual(IdentQuery.parse(Array("70000,23".utf8)), .failure(.invalidPort("70000", "23")))
        XCTAssertEqual(IdentQuery.parse(Array("99999999999,1".utf8)), .failure(.malformed))
        XCTAssertEqual(IdentQuery.parse(Array("hello".utf8)), .failure(.malformed))
        XCTAssertEqual(IdentQuery.parse(Array("1,2,3".utf8)), .failure(.malformed))
        XCTAssertEqual(IdentQuery.parse(Array("-1,2".utf8)), .failure(.malformed))
        XCTAssertEqual(IdentQuery.reply(IdentQuery(serverPort: 6193, clientPort: 23), .user("stjohns", system: "UNIX")), "6193 , 23 : USERID : UNIX : stjohns\r\n")
        XCTAssertEqual(IdentQuery.reply(IdentQuery(serverPort: 6195, clientPort: 23), .error(.noUser)), "6195 , 23 : ERROR : NO-USER\r\n")
    }

    static let table = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
           1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
           2: 0100007F:1F91 0100007F:D432 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0 0 0 0 0 0
        garbage line
           3: 0100007F:ZZZZ 0100007F:D431 01
        """

    func testSocketTable() {
        let rows = SocketTable.parse(Substring(Self.table))
        XCTAssertEqual(rows.count, 3)
        XCTAssertTrue(SocketTable.parse("   0: 0100007F:-F90 0100007F:D431 01\n   1: +100007F:1F90 0100007F:D431 01\n").isEmpty, "signs are not hex digits")
        let local = SocketTable.Endpoint(address: [127, 0, 0, 1], port: 0x1F90)
        XCTAssertTrue(SocketTable.contains(rows, local: local, remote: .init(address: [127, 0, 0, 1], port: 0xD431)))
        XCTAssertFalse(SocketTable.contains(rows, local: local, remote: .init(address: [127, 0, 0, 2], port: 0xD431)), "another asker")
        XCTAssertFalse(SocketTable.contains(rows, local: .init(address: [127, 0, 0, 1], port: 0x1F91), remote: .init(address: [127, 0, 0, 1], port: 0xD432)), "TIME_WAIT is gone")
        let v6 = "   0: 00000000000000000000000001000000:0050 0000000000000000FFFF00000100007F:C350 01 0\n"
        let mapped = SocketTable.parse(Substring(v6))
        XCTAssertEqual(mapped.first?.local.address, [UInt8](repeating: 0, count: 15) + [1])
        XCTAssertEqual(mapped.first?.remote.address, [127, 0, 0, 1], "an IPv4-mapped address is the IPv4 address")
    }

    func testTheLiveTableHoldsARealConnection() throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let client = try ClientBootstrap(group: group).connect(to: server.localAddress!).wait()
        defer { try? client.close().wait() }
        let serverPort = try XCTUnwrap(server.localAddress?.port), clientPort = try XCTUnwrap(client.localAddress?.port)
        let loopback: [UInt8] = [127, 0, 0, 1]
        XCTAssertTrue(SocketTable.exists(local: .init(address: loopback, port: serverPort), remote: .init(address: loopback, port: clientPort), limit: 1 << 24))
        XCTAssertFalse(SocketTable.exists(local: .init(address: loopback, port: serverPort), remote: .init(address: loopback, port: clientPort == 65_535 ? 1 : clientPort + 1), limit: 1 << 24))
    }

    func answer(_ line: String, exists: Bool, user: String? = nil) throws -> String {
        try answerAndEvent(line, exists: exists, user: user).0
    }

    /// The reply to one query line and the `ident.query` event the session reports with it.
    func answerAndEvent(_ line: String, exists: Bool, user: String? = nil) throws -> (String, LineEvent?) {
        let session = IdentSession(settings: IdentService.Settings(user: user))
        _ = session.start(context: LineSessionContext(peer: try SocketAddress(ipAddress: "127.0.0.1", port: 40_000), local: try SocketAddress(ipAddress: "127.0.0.1", port: 113)))
        var actions = session.receive(line: ByteBuffer(string: line), ending: .crlf)
        if case .perform(let lookup)? = actions.first {
            XCTAssertEqual(lookup.remote, SocketTable.Endpoint(address: [127, 0, 0, 1], port: 23))
            actions = session.complete(exists)
        }
        var event: LineEvent?
        if case .event(let found)? = actions.first {
            event = found
            actions.removeFirst()
        }
        guard case .reply(let text)? = actions.first, case .close? = actions.last else { XCTFail("\(actions)"); return ("", nil) }
        return (text, event)
    }

    func testEachQueryIsReportedWithItsAnswer() throws {
        func fields(_ event: LineEvent?) -> [String: String] {
            Dictionary((event?.fields ?? []).map { name, value in
                switch value {
                case .string(let text): (name, text)
                case .int(let number): (name, String(number))
                case .bool(let flag): (name, String(flag))
                case .strings(let list): (name, list.joined(separator: ","))
                case .secret: (name, "secret")
                }
            }, uniquingKeysWith: { a, _ in a })
        }
        let (_, found) = try answerAndEvent("6191, 23", exists: true, user: "alice")
        XCTAssertEqual(found?.kind, "ident.query")
        XCTAssertEqual(fields(found), ["server_port": "6191", "client_port": "23", "answer": "USERID", "user": "alice"])
        XCTAssertEqual(fields(try answerAndEvent("6191, 23", exists: false).1)["answer"], "NO-USER")
        XCTAssertEqual(fields(try answerAndEvent("0, 23", exists: true).1)["answer"], "INVALID-PORT")
        XCTAssertEqual(fields(try answerAndEvent("junk", exists: true).1), ["answer": "UNKNOWN-ERROR", "malformed": "true"])
    }

    func testSessionAnswers() throws {
        XCTAssertEqual(try answer("6191, 23", exists: true), "6191 , 23 : ERROR : HIDDEN-USER\r\n")
        XCTAssertEqual(try answer("6191, 23", exists: true, user: "alice"), "6191 , 23 : USERID : UNIX : alice\r\n")
        XCTAssertEqual(try answer("6191, 23", exists: false, user: "alice"), "6191 , 23 : ERROR : NO-USER\r\n")
        XCTAssertEqual(try answer("0, 23", exists: true), "0 , 23 : ERROR : INVALID-PORT\r\n")
        XCTAssertEqual(try answer("\u{1b}[2J", exists: true), "0 , 0 : ERROR : UNKNOWN-ERROR\r\n")
    }
}
