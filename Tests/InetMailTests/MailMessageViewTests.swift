import XCTest
@testable import InetMail

/// The message view the mail API shows: header fields, MIME parts, encodings, and what a
/// malformed message still gives.
final class MailMessageViewTests: XCTestCase {
    private func view(_ text: String) -> MailMessageView {
        MailMessageView(bytes: Array(text.utf8))
    }

    func testHeaderFieldsAreUnfoldedAndEncodedWordsDecoded() {
        let message = view("""
            From: =?UTF-8?B?w4lsaXNl?= <elise@example.test>\r
            To: bob@inetkit.test,\r
             carol@inetkit.test\r
            Subject: =?ISO-8859-1?Q?caf=E9_cr=E8me?= =?UTF-8?Q?_=C3=BCber?= and more\r
            Bad Field Name: skipped\r
            X-Empty:\r
            \r
            body\r

            """)
        XCTAssertEqual(message.header("from"), "Élise <elise@example.test>")
        XCTAssertEqual(message.header("TO"), "bob@inetkit.test, carol@inetkit.test")
        XCTAssertEqual(message.header("Subject"), "café crème über and more")
        XCTAssertNil(message.header("Bad Field Name"))
        XCTAssertEqual(message.header("X-Empty"), "")
        XCTAssertEqual(message.text, "body\r\n")
        XCTAssertNil(message.html)
    }

    func testMalformedEncodedWordsStayAsTheyAre() {
        XCTAssertEqual(MailMessageView.decodeWords("=?UTF-8?X?abc?= tail"), "=?UTF-8?X?abc?= tail")
        XCTAssertEqual(MailMessageView.decodeWords("=?UTF-8?B?!!!?="), "=?UTF-8?B?!!!?=")
        XCTAssertEqual(MailMessageView.decodeWords("price =? 5"), "price =? 5")
        XCTAssertEqual(MailMessageView.decodeWords("=?"), "=?")
        XCTAssertEqual(MailMessageView.decodeWords("a =?utf-8?q?b?= c"), "a b c")
    }

    func testMultipartAlternativeInMixedGivesTextHTMLAndAttachments() {
        let message = view("""
            Content-Type: multipart/mixed; boundary="outer"\r
            \r
            preamble\r
            --outer\r
            Content-Type: multipart/alternative; boundary=inner\r
            \r
            --inner\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: quoted-printable\r
            \r
            caf=C3=A9 is a soft=\r
             break\r
            --inner\r
            Content-Type: text/html; charset=iso-8859-1\r
            Content-Transfer-Encoding: base64\r
            \r
            PHA+Y2Fm6TwvcD4=\r
            --inner--\r
            --outer\r
            Content-Type: application/pdf; name="r.pdf"\r
            Content-Disposition: attachment; filename="=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?="\r
            Content-Transfer-Encoding: base64\r
            \r
            AAECAwQF\r
            BgcICQ==\r
            --outer--\r
            epilogue\r

            """)
        XCTAssertEqual(message.text, "café is a soft break")
        XCTAssertEqual(message.html, "<p>café</p>")
        XCTAssertEqual(message.attachments, [.init(filename: "résumé.pdf", contentType: "application/pdf", size: 10)])
    }

    func testAMessageWithoutItsClosingBoundaryOrHeaderEndStillShowsWhatItHas() {
        let unclosed = view("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nfirst part\r\n--b\r\nContent-Type: text/html\r\n\r\n<i>x</i>")
        XCTAssertEqual(unclosed.text, "first part")
        XCTAssertEqual(unclosed.html, "<i>x</i>")
        let noBody = view("Subject: only a header")
        XCTAssertEqual(noBody.header("subject"), "only a header")
        XCTAssertEqual(noBody.text, "")
        let garbage = MailMessageView(bytes: [0xFF, 0xFE, 0x00, 0x0A, 0x0A, 0xC3])
        XCTAssertEqual(garbage.headers.count, 0)
        XCTAssertNotNil(garbage.text)
    }

    func testDeeplyNestedAndManyPartsAreBounded() {
        var text = ""
        for depth in 0..<50 { text += "Content-Type: multipart/mixed; boundary=b\(depth)\r\n\r\n--b\(depth)\r\n" }
        text += "Content-Type: text/plain\r\n\r\ndeep\r\n"
        let deep = view(text)
        XCTAssertNil(deep.text, "past maximumDepth nothing is followed")
        var many = "Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        for index in 0..<1000 { many += "--x\r\nContent-Type: application/octet-stream\r\n\r\npart \(index)\r\n" }
        many += "--x--\r\n"
        XCTAssertLessThanOrEqual(view(many).attachments.count, MailMessageView.maximumParts)
    }

    func testQuotedPrintableAndBase64Decoders() {
        XCTAssertEqual(MailMessageView.quotedPrintable(Array("a=3Db=\r\nc=4".utf8), soft: true), Array("a=bc=4".utf8))
        XCTAssertEqual(MailMessageView.quotedPrintable(Array("=zz=".utf8), soft: true), Array("=zz=".utf8))
        XCTAssertEqual(MailMessageView.base64(Array("aGVsbG8=".utf8)), Array("hello".utf8))
        XCTAssertNil(MailMessageView.base64(Array("aGV*".utf8)))
        XCTAssertEqual(MailMessageView.base64(Array("aGVs\r\nbG8".utf8), lenient: true), Array("hello".utf8))
    }
}
