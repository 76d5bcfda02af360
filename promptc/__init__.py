"""promptc"""
