import XCTest
@testable import InetMail

final class MailAddressTests: XCTestCase {
    func testParsesDotAtomAndQuotedLocalParts() {
        XCTAssertEqual(MailAddress.parse("carol@Example.TEST"), MailAddress(localPart: "carol", domain: "example.test"))
        XCTAssertEqual(MailAddress.parse("first.last+tag@inetkit.test")?.localPart, "first.last+tag")
        XCTAssertEqual(MailAddress.parse("\"john doe\"@inetkit.test")?.localPart, "john doe")
        XCTAssertEqual(MailAddress.parse("\"a\\\"b\"@x.test")?.localPart, "a\"b")
        XCTAssertEqual(MailAddress.parse("user@[127.0.0.1]")?.domain, "[127.0.0.1]")
        XCTAssertEqual(MailAddress(localPart: "john doe", domain: "x.test").description, "\"john doe\"@x.test")
    }

    func testRejectsMalformedAddresses() {
        for text in ["", "nodomain", "@x.test", "a@", ".a@x.test", "a.@x.test", "a..b@x.test", "a b@x.test",
                     "a@-x.test", "a@x..test", "a@x_y.test", "\"open@x.test", "a@[1.2.3.4", String(repeating: "l", count: 65) + "@x.test"] {
            XCTAssertNil(MailAddress.parse(Substring(text)), text)
        }
        XCTAssertNil(MailAddress.parse("jösé@x.test"))
        XCTAssertEqual(MailAddress.parse("jösé@x.test", utf8: true)?.localPart, "jösé")
    }

    /// Issue 11: a backslash-escaped control character skipped the control-character check
    /// and reached the Return-Path header.
    func testEscapedControlCharactersAreRefused() {
        for control in ["\r", "\n", "\u{0}", "\t", "\u{7F}", "\u{1B}"] {
            XCTAssertNil(MailAddress.parse(Substring("\"a\\" + control + "b\"@example.test")), control.debugDescription)
        }
        XCTAssertEqual(MailAddress.parse("\"a\\ b\"@example.test")?.localPart, "a b")
        XCTAssertEqual(MailAddress.parse("\"a\\\"b\"@example.test")?.localPart, "a\"b")
    }

    func testStorableRejectsPathTricks() {
        XCTAssertFalse(MailAddress(localPart: "a/b", domain: "x.test").isStorable)
        XCTAssertFalse(MailAddress(localPart: "..", domain: "x.test").isStorable)
        XCTAssertFalse(MailAddress(localPart: "a\u{1}", domain: "x.test").isStorable)
        XCTAssertTrue(MailAddress(localPart: "carol", domain: "x.test").isStorable)
    }

    func testPathArgument() throws {
        let plain = try XCTUnwrap(SMTPPathArgument.parse("<a@b.test> SIZE=100 BODY=8bitmime SMTPUTF8"))
        XCTAssertEqual(plain.path, "a@b.test")
        XCTAssertEqual(plain.parameters.map(\.key), ["SIZE", "BODY", "SMTPUTF8"])
        XCTAssertEqual(plain.parameters.map(\.value), ["100", "8bitmime", nil])
        XCTAssertEqual(SMTPPathArgument.parse(" <a@b.test>")?.path, "a@b.test")
        XCTAssertEqual(SMTPPathArgument.parse("<>")?.path, "")
        XCTAssertEqual(SMTPPathArgument.parse("a@b.test")?.path, "a@b.test")
        XCTAssertEqual(SMTPPathArgument.parse("<@relay.test,@r2.test:a@b.test>")?.path, "a@b.test")
        XCTAssertEqual(SMTPPathArgument.parse("<\"x>y\"@b.test>")?.path, "\"x>y\"@b.test")
        XCTAssertNil(SMTPPathArgument.parse("<a@b.test"))
        XCTAssertNil(SMTPPathArgument.parse("<a@b.test>junk"))
        XCTAssertNil(SMTPPathArgument.parse(""))
        XCTAssertNil(SMTPPathArgument.parse("<a@b.test> =x"))
    }
}
