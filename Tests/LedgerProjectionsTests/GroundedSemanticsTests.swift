import LedgerCore
import LedgerProjections
import Testing

@Suite("Grounded semantics on hand-worked frameworks")
struct GroundedSemanticsTests {
    typealias AF = ArgumentationFramework<String>

    func labels(_ af: AF) -> [String: ArgumentLabel] {
        let labelling = af.groundedLabelling()
        return Dictionary(uniqueKeysWithValues: af.arguments.map { ($0, labelling.label(of: $0)) })
    }

    @Test("an unattacked argument is accepted")
    func unattacked() {
        let af = AF(arguments: ["a"])
        #expect(labels(af) == ["a": .accepted])
        #expect(af.groundedLabelling().reason(for: "a") { $0 } == "accepted: nothing attacks it")
    }

    @Test("a chain a ← b ← c: c in, b out, a reinstated")
    func chain() {
        let af = AF(arguments: ["a", "b", "c"], attacks: [("b", "a"), ("c", "b")])
        #expect(labels(af) == ["a": .accepted, "b": .rejected, "c": .accepted])
        let labelling = af.groundedLabelling()
        #expect(labelling.reason(for: "b") { $0 } == "rejected: attacked by c, which nothing attacks")
        #expect(labelling.reason(for: "a") { $0 } == "accepted: every attacker is rejected (b)")
        #expect(labelling.accepted == ["a", "c"])
    }

    @Test("a longer chain alternates, and the explanation names the earliest accepted attacker")
    func longChain() {
        // e → d → c → b → a, and e → b directly.
        let af = AF(arguments: ["a", "b", "c", "d", "e"], attacks: [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("e", "b")])
        #expect(labels(af) == ["a": .accepted, "b": .rejected, "c": .accepted, "d": .rejected, "e": .accepted])
        #expect(af.groundedLabelling().decisiveAttacker(of: "b") == "e")
    }

    @Test("an odd cycle a → b → c → a leaves everything undecided")
    func oddCycle() {
        let af = AF(arguments: ["a", "b", "c"], attacks: [("a", "b"), ("b", "c"), ("c", "a")])
        #expect(labels(af) == ["a": .undecided, "b": .undecided, "c": .undecided])
        #expect(af.groundedLabelling().reason(for: "a") { $0 } == "undecided: attacked by c, which is itself undecided")
    }

    @Test("an even cycle a ↔ b is undecided until a third argument breaks it")
    func evenCycle() {
        let cycle = AF(arguments: ["a", "b"], attacks: [("a", "b"), ("b", "a")])
        #expect(labels(cycle) == ["a": .undecided, "b": .undecided])
        #expect(cycle.groundedLabelling().reason(for: "a") { $0 } == "undecided: b and it attack each other, and nothing else settles either")
        let broken = AF(arguments: ["a", "b", "c"], attacks: [("a", "b"), ("b", "a"), ("c", "a")])
        #expect(labels(broken) == ["a": .rejected, "b": .accepted, "c": .accepted])
    }

    @Test("a self-attacking argument is undecided, and so is what it attacks")
    func selfAttack() {
        let af = AF(arguments: ["a", "b"], attacks: [("a", "a"), ("a", "b")])
        #expect(labels(af) == ["a": .undecided, "b": .undecided])
        #expect(af.groundedLabelling().reason(for: "a") { $0 } == "undecided: it attacks itself")
        // An unattacked attacker settles the self-attacker, and reinstates b.
        let settled = AF(arguments: ["a", "b", "c"], attacks: [("a", "a"), ("a", "b"), ("c", "a")])
        #expect(labels(settled) == ["a": .rejected, "b": .accepted, "c": .accepted])
    }

    @Test("unattacked evidence rejects the claim it contradicts")
    func unattackedEvidence() {
        let af = ArgumentationFramework<FactArgument>(
            arguments: [.claim("C-1"), .evidence("E-3")], attacks: [(.evidence("E-3"), .claim("C-1"))])
        let labelling = af.groundedLabelling()
        #expect(labelling.label(of: .evidence("E-3")) == .accepted)
        #expect(labelling.label(of: .claim("C-1")) == .rejected)
        #expect(labelling.reason(for: .claim("C-1")) { $0.description } == "rejected: attacked by evidence E-3, which nothing attacks")
    }

    @Test("countered evidence: conflicting evidence leaves the claim undecided; a third item settles it")
    func counteredEvidence() {
        // E-1 contradicts C-1, E-2 supports C-1: E-1 and E-2 attack each other (rule 4).
        let conflict: [(FactArgument, FactArgument)] = [
            (.evidence("E-1"), .claim("C-1")), (.evidence("E-1"), .evidence("E-2")), (.evidence("E-2"), .evidence("E-1")),
        ]
        let af = ArgumentationFramework<FactArgument>(arguments: [.claim("C-1"), .evidence("E-1"), .evidence("E-2")], attacks: conflict)
        let labelling = af.groundedLabelling()
        #expect(labelling.label(of: .claim("C-1")) == .undecided)
        #expect(labelling.label(of: .evidence("E-1")) == .undecided)
        #expect(labelling.label(of: .evidence("E-2")) == .undecided)
        // An unattacked argument against E-2 settles the conflict: E-2 out, E-1 in, C-1 out.
        let settled = ArgumentationFramework<FactArgument>(
            arguments: [.claim("C-1"), .evidence("E-1"), .evidence("E-2"), .evidence("E-6")],
            attacks: conflict + [(.evidence("E-6"), .evidence("E-2"))])
        let after = settled.groundedLabelling()
        #expect(after.label(of: .evidence("E-2")) == .rejected)
        #expect(after.label(of: .evidence("E-1")) == .accepted)
        #expect(after.label(of: .claim("C-1")) == .rejected)
    }

    @Test("the labelling is the least fixed point of the characteristic function", arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func randomFrameworks(seed: UInt64) {
        print("grounded property test seed \(seed)")
        var random = SplitMix64(seed: seed)
        for _ in 0..<200 {
            let n = Int.random(in: 0...8, using: &random)
            let arguments = (0..<n).map { "a\($0)" }
            var attacks: [(String, String)] = []
            for x in arguments {
                for y in arguments where Int.random(in: 0..<100, using: &random) < 20 { attacks.append((x, y)) }
            }
            let af = AF(arguments: arguments, attacks: attacks)
            let labelling = af.groundedLabelling()
            // The reference reads the attacks as generated, not the framework's own map of them, so
            // an attack the framework dropped, reversed or doubled cannot agree with itself.
            let attackers = Dictionary(grouping: attacks, by: \.1).mapValues { $0.map(\.0) }
            // The grounded extension by iterating F(S) = {a | S attacks every attacker of a} from ∅.
            var extensionSet = Set<String>()
            while true {
                let next = Set(arguments.filter { a in
                    (attackers[a] ?? []).allSatisfy { b in (attackers[b] ?? []).contains { extensionSet.contains($0) } }
                })
                if next == extensionSet { break }
                extensionSet = next
            }
            // Checked with plain comparisons; one expectation per framework keeps the test fast.
            var consistent = true
            for a in arguments {
                let attackerLabels = (attackers[a] ?? []).map { labelling.label(of: $0) }
                switch labelling.label(of: a) {
                case .accepted: consistent = consistent && attackerLabels.allSatisfy { $0 == .rejected }
                case .rejected: consistent = consistent && attackerLabels.contains(.accepted)
                case .undecided: consistent = consistent && !attackerLabels.contains(.accepted) && attackerLabels.contains(.undecided)
                }
            }
            #expect(Set(labelling.accepted) == extensionSet && consistent, "seed \(seed), attacks \(attacks)")
        }
    }
}
