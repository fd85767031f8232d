import Foundation
@testable import InetHTTP
import InetCore
import XCTest

/// Which files the uploads API offers: only what an upload event names, inside a folder uploads
/// land in, as a regular file of the recorded size.
final class UploadsAPITests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "inetkit-uploads-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/in", withIntermediateDirectories: true)
        try Data("outside".utf8).write(to: URL(fileURLWithPath: folder + "/secret.txt"))
        try Data("uploaded".utf8).write(to: URL(fileURLWithPath: folder + "/in/file.bin"))
        try FileManager.default.createSymbolicLink(atPath: folder + "/in/link.bin", withDestinationPath: folder + "/secret.txt")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func event(_ members: String, kind: String = "ftp.transfer") -> StoredEvent {
        StoredEvent(id: 7, service: kind == "ftp.transfer" ? "ftp" : "tftp", kind: kind, connection: 3, time: 0,
                    body: Array(#","peer":"127.0.0.1:5","#.utf8) + Array(members.utf8))
    }

    func testAnUploadEventIsParsedAndOthersAreNot() throws {
        let upload = try XCTUnwrap(UploadsAPI.Upload(event(#""user":"alice","direction":"upload","file":"/in/<b>.bin","bytes":8,"sha256":"ab","path":"/x""#)))
        XCTAssertEqual(upload.file, "/in/<b>.bin")
        XCTAssertEqual(upload.name, "_b_.bin", "the download's name is made safe")
        XCTAssertEqual(upload.bytes, 8)
        XCTAssertEqual(upload.user, "alice")
        XCTAssertNil(UploadsAPI.Upload(event(#""direction":"download","file":"/a","bytes":1"#)))
        XCTAssertNil(UploadsAPI.Upload(event(#""direction":"upload","file":"/a""#, kind: "http.request")))
        XCTAssertNotNil(UploadsAPI.Upload(event(#""direction":"upload","file":"a","bytes":1"#, kind: "tftp.transfer")))
        XCTAssertEqual(UploadsAPI.Upload(event(#""direction":"upload","file":"/.hidden","bytes":1"#))?.name, "upload.hidden")
        let members = UploadsAPI.members(upload)
        XCTAssertTrue(members.contains(#""file":"/in/\u003cb\u003e.bin""#) || members.contains(#""file":"/in/<b>.bin""#), members)
    }

    func testOnlyARegularFileInsideAnUploadFolderOfTheRecordedSizeIsOffered() throws {
        func upload(_ path: String, bytes: Int = 8) -> UploadsAPI.Upload {
            UploadsAPI.Upload(event(#""direction":"upload","file":"x","bytes":\#(bytes),"path":"\#(path)""#))!
        }
        let folders = [folder + "/in"]
        XCTAssertNotNil(UploadsAPI.locate(upload(folder + "/in/file.bin"), folders: folders))
        XCTAssertNil(UploadsAPI.locate(upload(folder + "/in/file.bin", bytes: 9), folders: folders), "the size changed")
        XCTAssertNil(UploadsAPI.locate(upload(folder + "/secret.txt", bytes: 7), folders: folders), "outside every upload folder")
        XCTAssertNil(UploadsAPI.locate(upload(folder + "/in/../secret.txt", bytes: 7), folders: folders), "outside by ..")
        XCTAssertNil(UploadsAPI.locate(upload(folder + "/in/link.bin", bytes: 7), folders: folders), "a symlink out")
        XCTAssertNil(UploadsAPI.locate(upload(folder + "/in", bytes: 0), folders: folders), "a folder")
        XCTAssertNil(UploadsAPI.locate(upload("in/file.bin"), folders: folders), "a relative path")
        XCTAssertNil(UploadsAPI.locate(upload(folder + "/in/file.bin"), folders: []), "no upload folders")
        XCTAssertNil(UploadsAPI.locate(upload(folder + "/inside/file.bin"), folders: folders), "a sibling with the same prefix")
    }
}
