import Foundation
import InetFuzzHarness
import XCTest

/// Every input of the seed corpus (`Fuzz/Corpus/<target>/`) and every crash a fuzzer ever
/// found (`Fuzz/FailCases/<target>/`) runs through its target in the ordinary test run, so a
/// bug stays fixed where no fuzzer runs (as swift-nio-ssh's FuzzResultTests do).
final class FuzzRegressionTests: XCTestCase {
    static let fuzzFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func inputs(_ kind: String, _ target: String) -> [URL] {
        let folder = Self.fuzzFolder.appendingPathComponent(kind).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    private func replay(_ kind: String) throws -> Int {
        var count = 0
        for target in FuzzTargets.all {
            for file in inputs(kind, target.name) {
                let bytes = Array(try Data(contentsOf: file))
                if let finding = target.run(bytes) {
                    XCTFail("\(target.name): \(file.lastPathComponent): \(finding)")
                }
                count += 1
            }
        }
        return count
    }

    func testEveryTargetHasASeedCorpus() {
        for target in FuzzTargets.all {
            XCTAssertFalse(inputs("Corpus", target.name).isEmpty, "Fuzz/Corpus/\(target.name) is empty")
        }
    }

    func testSeedCorpusRunsClean() throws {
        XCTAssertGreaterThan(try replay("Corpus"), 0)
    }

    func testEveryCrashEverFoundStaysFixed() throws {
        _ = try replay("FailCases")
    }
}
