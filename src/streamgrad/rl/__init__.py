"""Reinforcement learning on finite MDPs: exact answers, online actor-critic, its limit ODE."""
