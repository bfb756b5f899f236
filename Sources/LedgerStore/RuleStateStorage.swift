#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerCrypto

/// How the append-rule state is kept as it grows. Every id in use must stay known (a later
/// statement may not reuse one), so the state grows with the ledger; holding it all in memory
/// took about 350 bytes an entry. Instead, whenever the state's own tables hold
/// ``recordsInMemory`` records, they are written as a sorted ``RuleTable`` to an unnamed file in
/// ``directory`` and emptied. A new table is merged with the newer tables on disk until each is
/// smaller than the one before it, as in a binary counter: each id is rewritten O(log n) times,
/// and a lookup looks in O(log n) tables, most answered by their Bloom filters in memory. Memory
/// stays bounded whatever the ledger's size (besides about two bytes a row for the filters and
/// block keys); the disk holds about 120 bytes an entry while the command runs (up to three times
/// that while tables merge), and nothing once it ends.
public struct RuleStateStorage: Sendable {
    /// Where the tables' files are made (and at once unlinked).
    public var directory: String
    /// How many records' ids and claims are kept in memory before they are moved to disk.
    public var recordsInMemory: UInt64

    public init(directory: String = RuleStateStorage.temporaryDirectory, recordsInMemory: UInt64 = 65_536) {
        self.directory = directory
        self.recordsInMemory = max(1, recordsInMemory)
    }

    /// `TMPDIR`, or `/tmp`.
    public static var temporaryDirectory: String {
        if let value = getenv("TMPDIR"), value.pointee != 0 { return String(cString: value) }
        return "/tmp"
    }

    /// Moves `state`'s own ids and claims to a table on disk if they cover ``recordsInMemory``
    /// records or more. Only between records: never while changes may still be undone.
    func moveOutIfDue(_ state: inout LedgerState) throws(LedgerError) {
        let base = state.base
        guard state.count - (base?.count ?? 0) >= recordsInMemory else { return }
        // A table merged away would take its failure with it: the lookup it failed answered
        // "not found", and nothing since can be relied on.
        if let failure = base?.readFailure { throw failure }
        guard base == nil || base is any RuleTableBacked else { return }
        var tables = (base as? any RuleTableBacked)?.tables ?? []
        var merging = [try RuleTable.write(state, in: directory)]
        var rows = merging[0].rowCount
        while let last = tables.last, last.rowCount <= rows {
            merging.insert(tables.removeLast(), at: 0)
            rows += last.rowCount
        }
        tables.append(merging.count == 1 ? merging[0] : try RuleTable.merge(merging, in: directory))
        state.rebase(onto: RuleRuns(state, tables: tables))
    }
}

/// A rule-state base whose ids and claims are in ``RuleTable``s, oldest first.
protocol RuleTableBacked {
    var tables: [RuleTable] { get }
}

/// The ids and claims a ``LedgerState`` moved out of memory: its tables on disk, newest looked
/// in first (a claim retracted later is in a newer table than its assertion).
final class RuleRuns: LedgerStateBase, RuleTableBacked, @unchecked Sendable {
    let origin: String?
    let count: UInt64
    let parties: [String: LedgerState.Party]
    let keys: [Digest: LedgerState.Key]
    let tables: [RuleTable]

    /// The base of `state` at its present size, once `tables` hold all its ids and claims.
    init(_ state: LedgerState, tables: [RuleTable]) {
        origin = state.origin
        count = state.count
        parties = state.parties
        keys = state.keys
        self.tables = tables
    }

    func sequence(of kind: IDKind, _ id: String) -> UInt64? {
        let key = RuleTable.key(kind.rawValue, id)
        return newest { $0.sequence(key) }
    }

    func sequence(ofEntry entryID: Digest) -> UInt64? {
        let key = RuleTable.key(entry: entryID)
        return newest { $0.sequence(key) }
    }

    func claim(_ id: String) -> LedgerState.Claim? {
        let key = RuleTable.key(RuleTable.claimKind, id)
        return newest { $0.claim(key) }
    }

    /// The answer of the newest table that has one.
    private func newest<T>(_ lookup: (RuleTable) -> T?) -> T? {
        tables.reversed().lazy.compactMap(lookup).first
    }

    var readFailure: LedgerError? { tables.lazy.compactMap(\.readFailure).first }
}
