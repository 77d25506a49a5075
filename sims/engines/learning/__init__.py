"""Learning-dynamics engines: student–teacher networks trained by local rules.

Submodules (imported explicitly, never from here):

- ``student_teacher`` — curl descent (Ninou, Kadmon & Cayco-Gajic 2025): batched N → K → 1
  student–teacher training with rule-flipped neurons, q order parameter, Lyapunov exponents.
- ``mlp`` — feedback alignment with low-dimensional error feedback (Hanut & Kadmon 2025).
"""
