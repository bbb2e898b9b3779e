"""For students and instructors: the walkthrough (walk), the guided mode (guided, stagecheck),
exercises and grading (exercise), and the progress records reports read (progress)."""
