"""The tutorial notebook's printed gradients at two commits, copied as an independent reference.

Source: rasbt/LLMs-from-scratch, ch04/01_main-chapter-code/ch04.ipynb, the outputs of the two
``print_gradients`` cells (without, then with shortcut connections), read with ``git show
<commit>:<path>`` from a snapshot of the repository:

- 557ddfc6846d5fc31b0b61e2626147f125a7a3b9 (2024-02-15), cells [20] and [21];
- 3829ccdb349875a3cdf14faf1a9f524d6c3e83dc (2024-04-03), cells [19] and [20].

Each list is layers.0.0.weight ... layers.4.0.weight, as printed. Do not edit.
"""

COMMIT_557DDFC = "557ddfc6846d5fc31b0b61e2626147f125a7a3b9"
PRINTED_557DDFC = {
    False: [
        0.00020173587836325169,
        0.0001201116101583466,
        0.0007152041653171182,
        0.001398873864673078,
        0.005049646366387606,
    ],
    True: [
        0.22169792652130127,
        0.20694105327129364,
        0.32896995544433594,
        0.2665732502937317,
        1.3258541822433472,
    ],
}

COMMIT_3829CCD = "3829ccdb349875a3cdf14faf1a9f524d6c3e83dc"
PRINTED_3829CCD = {
    False: [
        0.00020173587836325169,
        0.00012011159560643137,
        0.0007152039906941354,
        0.0013988736318424344,
        0.005049645435065031,
    ],
    True: [
        0.22169792652130127,
        0.20694106817245483,
        0.32896995544433594,
        0.2665732204914093,
        1.3258540630340576,
    ],
}
