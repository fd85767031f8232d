import NIOConcurrencyHelpers

/// Encoded answers kept for reuse: an authoritative server answers the same few questions
/// again and again, and a cached answer only needs the new query's ID and question (its
/// letter case) copied in. Only plain queries are cached (one question, no records but an
/// optional EDNS(0) OPT), keyed by everything the answer depends on: the lowercased question,
/// RD, CD, the EDNS DO bit and the size limit. Bounded; cleared when the zones change.
final class AnswerCache: Sendable {
    private let entries = NIOLockedValueBox<(generation: Int, map: [[UInt8]: [UInt8]])>((0, [:]))
    static let maximumEntries = 20_000

    /// A query's cache key and where its question lies, if the query is plain enough.
    struct Key {
        var bytes: [UInt8]
        var question: Range<Int>
        /// The largest answer this query may get: 65535 over TCP; over UDP its EDNS size
        /// (512...1232), or 512 without EDNS.
        var limit: Int
    }

    static func key(for query: [UInt8], tcp: Bool, maximumUDP: Int) -> Key? {
        guard query.count >= 17, query[2] & 0xF8 == 0, query[4] == 0, query[5] == 1,
              query[6] == 0, query[7] == 0, query[8] == 0, query[9] == 0, query[10] == 0, query[11] <= 1 else { return nil }
        var position = 12
        var length = 1
        while true {
            guard position < query.count else { return nil }
            let label = Int(query[position])
            if label == 0 { break }
            guard label < 64 else { return nil }
            length += label + 1
            guard length <= 255 else { return nil }
            position += label + 1
        }
        let questionEnd = position + 1 + 4
        guard questionEnd <= query.count else { return nil }
        var key = [UInt8]()
        key.reserveCapacity(questionEnd - 12 + 8)
        for byte in query[12..<questionEnd] { key.append((65...90).contains(byte) ? byte | 0x20 : byte) }
        key.append(query[2] & 0x01)  // RD
        key.append(query[3] & 0x10)  // CD
        var limit = tcp ? 65_535 : 512
        if query[11] == 1 {
            // The OPT record: root owner, type 41; version 0 only (others get BADVERS the slow way).
            let opt = questionEnd
            guard opt + 11 <= query.count, query[opt] == 0, query[opt + 1] == 0, query[opt + 2] == 41,
                  query[opt + 6] == 0 else { return nil }
            let rdLength = Int(query[opt + 9]) << 8 | Int(query[opt + 10])
            guard opt + 11 + rdLength == query.count else { return nil }
            key.append(1)
            key.append(query[opt + 7] & 0x80)  // DO
            if !tcp { limit = max(512, min(Int(query[opt + 3]) << 8 | Int(query[opt + 4]), maximumUDP)) }
        } else {
            guard questionEnd == query.count else { return nil }
            key.append(0)
        }
        key.append(UInt8(limit >> 8))
        key.append(UInt8(limit & 0xFF))
        return Key(bytes: key, question: 12..<questionEnd, limit: limit)
    }

    func answer(for key: Key, query: [UInt8], generation: Int) -> [UInt8]? {
        guard var answer = entries.withLockedValue({ $0.generation == generation ? $0.map[key.bytes] : nil }) else { return nil }
        answer[0] = query[0]
        answer[1] = query[1]
        answer.replaceSubrange(key.question, with: query[key.question])
        return answer
    }

    func store(_ answer: [UInt8], for key: Key, generation: Int) {
        guard answer.count >= key.question.upperBound else { return }
        entries.withLockedValue { state in
            if state.generation != generation || state.map.count >= Self.maximumEntries { state = (generation, [:]) }
            state.map[key.bytes] = answer
        }
    }
}
